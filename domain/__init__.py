"""Pure domain rules for Tollgate: money, billing, criteria, dependencies, calendars."""
