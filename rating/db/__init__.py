"""The database floor: the declarative base, engine and sessions, migrations, bulk statements,
group commit and the repositories' common base."""
