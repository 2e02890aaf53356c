"""The catalog: certificates and fee items, their prices, allowed delivery methods and eligibility."""

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.enums import DeliveryMethod, ItemKind, Language
from core.errors import UnknownItem


class LocalizedText(BaseModel):
    """A text in Japanese and English; both are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ja: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __call__(self, lang: Language | str) -> str:
        """The text in `lang`."""
        return self.ja if Language(lang) is Language.JA else self.en


class ApplicationPeriod(BaseModel):
    """A yearly period (month-day, Asia/Tokyo) when an item is usually applied for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD")
    end: str = Field(pattern=r"^\d{2}-\d{2}$", description="MM-DD")


class CatalogItem(BaseModel):
    """One certificate or fee item the service issues."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: ItemKind
    name: LocalizedText
    price_yen: int = Field(ge=0)
    price_is_example: bool = False  # the guide states no prices; shipped prices are examples
    deliveries: tuple[DeliveryMethod, ...] = Field(min_length=1)
    max_copies: int = Field(10, ge=1)
    min_year: int | None = Field(None, ge=1)
    final_year_only: bool = False
    application_period: ApplicationPeriod | None = None
    note: LocalizedText | None = None

    @model_validator(mode="after")
    def _no_duplicate_deliveries(self) -> "CatalogItem":
        if len(set(self.deliveries)) != len(self.deliveries):
            raise ValueError("deliveries lists a method twice")
        return self


class Catalog(BaseModel):
    """All items of a university, looked up by code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: tuple[CatalogItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> "Catalog":
        codes = [item.code for item in self.items]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"item codes appear twice: {', '.join(duplicates)}")
        return self

    def get(self, code: str) -> CatalogItem:
        """The item with `code`.

        Raises:
            UnknownItem: if the catalog has no such item.
        """
        for item in self.items:
            if item.code == code:
                return item
        raise UnknownItem(code)

    def of_kind(self, kind: ItemKind) -> tuple[CatalogItem, ...]:
        """Items of one kind, in catalog order."""
        return tuple(item for item in self.items if item.kind is kind)
