"""The laboratory information system's door: orders in (worklist over MLLP or files), results out
(an outbox in the results database, delivered over MLLP or to a FHIR server or folder).

db.py: the tables; orders.py: worklist parsing and storage; outbox.py: releases queued in release
order, state per message; mllp.py: MLLP client with the ACK check; listener.py: the order
listener; fhir_out.py: FHIR POST or folder; sender.py: the delivery loop. Described in docs/lis.md.
"""
