"""Reminders, follow-ups and scheduling links: rows in our own table, fired exactly once through the inbox.

``commands`` registers the chat commands (``core.commands.registry``; ``targets`` resolves whom they name),
``firing.enqueue_due`` is the tick, ``firing.fire`` the inbox handler, ``firing.cancel_followups`` runs when a
participant writes, ``session_moves.follow_session`` when Rally moves a session. See docs/reminders.md.
"""
