"""madoguchi's domain core: profile, catalog, students, links, calendar, orders, payments, mail."""
