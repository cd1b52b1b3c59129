"""Meetings: notices within the rules, calendar invites, apologies and the register, minutes."""
