"""SCTE-35 ``splice_info_section``s for ad breaks, as hex for EXT-X-DATERANGE (RFC 8216bis 4.4.5.1.1).

Only what an ad break needs: a ``splice_insert`` (command type 5), immediate, for the whole
program, leaving the network with a break duration (OUT) or returning to it (IN), per
ANSI/SCTE 35 9.6 and 9.7.2, closed by the MPEG-2 CRC-32 the section requires.
"""

from __future__ import annotations


class _Bits:
    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def put(self, width: int, value: int) -> None:
        if value < 0 or value >= 1 << width:
            raise ValueError(f"{value} does not fit in {width} bits")
        self.value = (self.value << width) | value
        self.count += width

    def bytes(self) -> bytes:
        assert self.count % 8 == 0
        return self.value.to_bytes(self.count // 8, "big")


def crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def splice_insert(event_id: int, *, out: bool, duration_s: float | None = None) -> bytes:
    """One splice_info_section: leave the network (``out``) for ``duration_s``, or return to it."""
    command = _Bits()
    command.put(32, event_id & 0xFFFFFFFF)
    command.put(1, 0)  # splice_event_cancel_indicator
    command.put(7, 0x7F)  # reserved
    command.put(1, 1 if out else 0)  # out_of_network_indicator
    command.put(1, 1)  # program_splice_flag
    command.put(1, 1 if duration_s is not None else 0)  # duration_flag
    command.put(1, 1)  # splice_immediate_flag
    command.put(4, 0xF)  # reserved
    if duration_s is not None:
        command.put(1, 1)  # auto_return
        command.put(6, 0x3F)  # reserved
        command.put(33, round(duration_s * 90_000))
    command.put(16, event_id & 0xFFFF)  # unique_program_id
    command.put(8, 0)  # avail_num
    command.put(8, 0)  # avails_expected
    body = command.bytes()

    after_length = _Bits()
    after_length.put(8, 0)  # protocol_version
    after_length.put(1, 0)  # encrypted_packet
    after_length.put(6, 0)  # encryption_algorithm
    after_length.put(33, 0)  # pts_adjustment
    after_length.put(8, 0)  # cw_index
    after_length.put(12, 0xFFF)  # tier
    after_length.put(12, len(body))  # splice_command_length
    after_length.put(8, 0x05)  # splice_command_type: splice_insert
    rest = after_length.bytes() + body + b"\x00\x00"  # descriptor_loop_length = 0
    header = _Bits()
    header.put(8, 0xFC)  # table_id
    header.put(1, 0)  # section_syntax_indicator
    header.put(1, 0)  # private_indicator
    header.put(2, 0x3)  # sap_type: not specified
    header.put(12, len(rest) + 4)  # section_length, CRC included
    section = header.bytes() + rest
    return section + crc32_mpeg2(section).to_bytes(4, "big")


def hex_attribute(section: bytes) -> str:
    """The hexadecimal-sequence form an EXT-X-DATERANGE SCTE35 attribute takes."""
    return "0x" + section.hex().upper()
