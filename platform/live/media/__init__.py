"""Sans-I/O media formats and the normalized units every stage passes on."""
