#!/usr/bin/env python3
"""Seed corpora for the macOS, Windows and FreeBSD decoder fuzz targets.

Each seed is a well-formed structure of one of the sizes a kernel returns, with the
field values of the decoders' unit-test fixtures (src/tcpinfo/{darwin,windows,freebsd}.rs),
laid out at the offsets of the system headers (little endian: amd64/arm64):

- darwin_tcp_connection_info: struct tcp_connection_info, 104 and 112 bytes;
- windows_tcp_info: version byte + TCP_INFO_v0/v1/v2, 88/136/152 bytes;
- freebsd_tcp_info: kern.osreldate (u32 LE) + struct tcp_info, 236/240/256 bytes.

Usage (from fuzz/): python3 seeds/make_seeds.py   (writes corpus/<target>/seed-*)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def put(buf, off, fmt, value):
    struct.pack_into("<" + fmt, buf, off, value)


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


def darwin(size, state=4, ssthresh=28_000):
    b = bytearray(size)
    put(b, 0, "B", state)  # tcpi_state
    put(b, 1, "B", 8)  # tcpi_snd_wscale
    put(b, 2, "B", 6)  # tcpi_rcv_wscale
    put(b, 4, "I", 0x1 | 0x2 | 0x4)  # tcpi_options: TS, SACK, WSCALE
    put(b, 8, "I", 0x2)  # tcpi_flags: reordering detected
    put(b, 12, "I", 207)  # tcpi_rto, ms
    put(b, 16, "I", 1400)  # tcpi_maxseg
    put(b, 20, "I", ssthresh)  # tcpi_snd_ssthresh
    put(b, 24, "I", 14_000)  # tcpi_snd_cwnd
    put(b, 28, "I", 65_535)  # tcpi_snd_wnd
    put(b, 32, "I", 3_333)  # tcpi_snd_sbbytes
    put(b, 36, "I", 131_648)  # tcpi_rcv_wnd
    put(b, 40, "I", 9)  # tcpi_rttcur
    put(b, 44, "I", 7)  # tcpi_srtt
    put(b, 48, "I", 3)  # tcpi_rttvar
    put(b, 52, "I", (1 << 0) | (1 << 4))  # tfo bits
    counters = [1_001, 1_400_002, 2_803, 904, 5_005, 606, (1 << 32) + 7]
    for i, c in enumerate(counters):
        if 56 + 8 * i + 8 <= size:
            put(b, 56 + 8 * i, "Q", c)
    return b


def windows(size):
    b = bytearray(size)
    put(b, 0, "i", 4)  # State: ESTABLISHED
    put(b, 4, "I", 1460)  # Mss
    put(b, 8, "Q", 123_456)  # ConnectionTimeMs
    put(b, 16, "B", 1)  # TimestampsEnabled
    put(b, 20, "I", 2_500)  # RttUs
    put(b, 24, "I", 900)  # MinRttUs
    put(b, 28, "I", 4_380)  # BytesInFlight
    put(b, 32, "I", 14_600)  # Cwnd
    put(b, 36, "I", 64_240)  # SndWnd
    put(b, 40, "I", 65_535)  # RcvWnd
    put(b, 44, "I", 131_072)  # RcvBuf
    put(b, 48, "Q", (1 << 33) + 1)  # BytesOut
    put(b, 56, "Q", 777_777)  # BytesIn
    put(b, 64, "I", 11)  # BytesReordered
    put(b, 68, "I", 2_920)  # BytesRetrans
    put(b, 72, "I", 3)  # FastRetrans
    put(b, 76, "I", 9)  # DupAcksIn
    put(b, 80, "I", 2)  # TimeoutEpisodes
    put(b, 84, "B", 5)  # SynRetrans
    if size >= 136:
        for off, fmt, v in [(88, "I", 21), (92, "I", 22), (96, "Q", 23), (104, "I", 24),
                            (108, "I", 25), (112, "Q", 26), (120, "I", 27), (124, "I", 28),
                            (128, "Q", 29)]:
            put(b, off, fmt, v)  # SndLim{Trans,Time,Bytes}{Rwin,Cwnd,Snd}
    if size >= 152:
        put(b, 136, "I", 31)  # OutOfOrderPktsIn
        put(b, 140, "B", 1)  # EcnNegotiated
        put(b, 144, "I", 33)  # EceAcksIn
        put(b, 148, "I", 34)  # PtoEpisodes
    return b


def freebsd(size, v13_3, v14):
    b = bytearray(size)
    put(b, 0, "B", 4)  # tcpi_state
    put(b, 5, "B", 0x0F)  # tcpi_options
    put(b, 6, "B", (9 << 4) | 7)  # tcpi_snd_wscale:4, tcpi_rcv_wscale:4
    put(b, 8, "I", 230_000)  # tcpi_rto, us
    put(b, 16, "I", 1_448)  # tcpi_snd_mss
    put(b, 20, "I", 1_449)  # tcpi_rcv_mss
    put(b, 52, "I", 12_000)  # tcpi_last_data_recv
    put(b, 68, "I", 3_100)  # tcpi_rtt, us
    put(b, 72, "I", 1_200)  # tcpi_rttvar
    put(b, 76, "I", 40_000)  # tcpi_snd_ssthresh
    put(b, 80, "I", 57_920)  # tcpi_snd_cwnd
    put(b, 96, "I", 65_700)  # tcpi_rcv_space
    put(b, 100, "I", 64_240)  # tcpi_snd_wnd
    put(b, 108, "I", 1_000_500)  # tcpi_snd_nxt
    put(b, 112, "I", 7_000_000)  # tcpi_rcv_nxt
    put(b, 120, "I", 13)  # tcpi_snd_rexmitpack
    put(b, 124, "I", 14)  # tcpi_rcv_ooopack
    put(b, 128, "I", 15)  # tcpi_snd_zerowin
    if v14:
        put(b, 132, "I", 16)  # tcpi_delivered_ce
        put(b, 136, "I", 17)  # tcpi_received_ce
        put(b, 164, "I", 18)  # tcpi_total_tlp
        put(b, 168, "Q", (1 << 40) + 19)  # tcpi_total_tlp_bytes
    if v13_3:
        put(b, 176, "I", 1_000_000)  # tcpi_snd_una
        put(b, 180, "I", 1_000_500)  # tcpi_snd_max
        put(b, 184, "I", 2)  # tcpi_rcv_numsacks
        put(b, 188, "I", 7_065_700)  # tcpi_rcv_adv
        put(b, 192, "I", 1)  # tcpi_dupacks
    return b


def main():
    write("darwin_tcp_connection_info", "112", darwin(112))
    write("darwin_tcp_connection_info", "104", darwin(104))
    write("darwin_tcp_connection_info", "112-syn-sent", darwin(112, state=2, ssthresh=1_073_725_440))

    for version, size in [(0, 88), (1, 136), (2, 152)]:
        write("windows_tcp_info", f"v{version}-{size}", bytes([version]) + windows(size))
    # A v2 request answered with the v1 struct (an older Windows), and v3 asked of v2.
    write("windows_tcp_info", "ask-v2-got-136", bytes([2]) + windows(136))
    write("windows_tcp_info", "ask-v3-got-152", bytes([3]) + windows(152))

    rel = lambda r: struct.pack("<I", r)
    write("freebsd_tcp_info", "13.2-236", rel(1_302_000) + freebsd(236, False, False))
    write("freebsd_tcp_info", "13.3-240", rel(1_303_000) + freebsd(240, True, False))
    write("freebsd_tcp_info", "14.0-240", rel(1_400_097) + freebsd(240, True, True))
    write("freebsd_tcp_info", "15.0-256", rel(1_500_000) + freebsd(256, True, True))
    write("freebsd_tcp_info", "unknown-240", rel(0) + freebsd(240, True, True))


if __name__ == "__main__":
    main()
