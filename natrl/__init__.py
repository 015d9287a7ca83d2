"""natrl: reinforcement-learning Neural Architecture Transformer (NAT, NAT++) and ITNAS on Ray."""

__version__ = "0.1.0"
