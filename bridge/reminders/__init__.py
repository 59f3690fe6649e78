"""Reminders, follow-ups and scheduling links: rows in our own table, fired exactly once through the inbox.

``commands`` registers the chat commands (``core.commands.registry``; ``targets`` resolves whom they name),
``firing.enqueue_due`` is the tick, ``firing.fire`` the inbox handler, ``firing.cancel_followups`` runs when a
participant writes, ``session_moves.follow_session`` when Rally moves a session. ``session_defaults`` is
``remind <participant>`` alone (the session's defaults as buttons) and the no-show follow-up with its team
reminder. See docs/reminders.md.
"""
