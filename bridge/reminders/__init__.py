"""Reminders, follow-ups and scheduling links: rows in our own table, fired exactly once through the inbox.

``commands.handle`` answers the chat commands, ``firing.enqueue_due`` is the tick, ``firing.fire`` the inbox
handler, ``firing.cancel_followups`` runs when a participant writes. See docs/reminders.md.
"""
