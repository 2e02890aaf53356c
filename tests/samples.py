"""Sample data shared by tests: a mailing address for 郵送 orders placed directly through the core."""

from core.addresses import MailingAddress, look_up

# The university's own postal code (Japan Post's data, read offline); the rest as a student would type it.
SAMPLE_ADDRESS = MailingAddress(look_up("8078555"), "1-1 医生ケ丘ハイツ101", "山田 太郎", "0936917211")
