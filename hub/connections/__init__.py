"""Connections: one account on one external system each (a Depop shop, a topi account, a
Deliverr or Flexport account), with its settings and its sealed secrets."""
