//! FreeBSD `struct tcp_info` (`getsockopt(IPPROTO_TCP, TCP_INFO)`), decoded from raw bytes.
//!
//! Pure functions, compiled on every target. Offsets come from FreeBSD's
//! `sys/netinet/tcp.h`, not from the `libc` crate, which declares the FreeBSD 12 layout.
//!
//! Offsets 0–131 are the same in every release since 10.x. Later fields took over the
//! trailing padding, which older kernels return as zeros — and with a 256-byte buffer
//! every release returns its whole struct (236, 240 or 256 bytes) — so the returned
//! length cannot tell a real 0 from "not there". The decoder therefore also takes the
//! kernel's release (`kern.osreldate`, `__FreeBSD_version`):
//!
//! | fields | offsets | valid from |
//! |---|---|---|
//! | `tcpi_state` … `tcpi_snd_zerowin` | 0–131 | every release (10.x +) |
//! | `tcpi_snd_una`, `tcpi_snd_max`, `tcpi_rcv_numsacks`, `tcpi_rcv_adv`, `tcpi_dupacks` | 176–195 | 13.3 ([`FREEBSD_13_3`]), 14.0 ([`FREEBSD_14_0`]) |
//! | `tcpi_delivered_ce`, `tcpi_received_ce`, `tcpi_total_tlp`, `tcpi_total_tlp_bytes` | 132–175 | 14.0 (reserved, zero, in 13.3+) |

use std::time::Duration;

use serde::Serialize;

use super::bytes::{u8_at, u32_at, u64_at};
use super::info::{Info, SysInfo, TcpOptions, TcpState};
use crate::error::{Error, Result};

/// Bytes every release fills in: all fields through `tcpi_snd_zerowin` (offset 128).
pub const FREEBSD_MIN_LEN: usize = 132;
/// The buffer to ask with: the largest struct known (256 bytes on FreeBSD 15, amd64).
pub const FREEBSD_MAX_LEN: usize = 256;

/// `kern.osreldate` of FreeBSD 13.3-RELEASE (first 13.x with `tcpi_snd_una` … `tcpi_dupacks`).
pub const FREEBSD_13_3: u32 = 1_303_000;
/// `kern.osreldate` of FreeBSD 14.0-RELEASE (first with every field through offset 196).
/// 14-CURRENT snapshots before it are treated like 13.2: `None` rather than a guess.
pub const FREEBSD_14_0: u32 = 1_400_097;

/// `tcpi_snd_ssthresh` of a connection that has not yet set one: `TCP_MAXWIN <<
/// TCP_MAX_WINSHIFT` = 65535 << 14.
pub const FREEBSD_INITIAL_SSTHRESH: u32 = 1_073_725_440;

/// `TCPI_OPT_*` flags of `tcpi_options`.
pub mod opt {
    /// TCP timestamps negotiated.
    pub const TIMESTAMPS: u8 = 0x01;
    /// SACK negotiated.
    pub const SACK: u8 = 0x02;
    /// Window scaling negotiated.
    pub const WSCALE: u8 = 0x04;
    /// ECN negotiated.
    pub const ECN: u8 = 0x08;
    /// Offloaded to a TCP offload engine.
    pub const TOE: u8 = 0x10;
    /// TCP Fast Open enabled on the connection (newer headers).
    pub const TFO: u8 = 0x20;
    /// Accurate ECN negotiated (newer headers).
    pub const ACE: u8 = 0x40;
}

/// The raw FreeBSD `struct tcp_info`, field by field, in kernel units.
///
/// Rust names are the kernel's without `tcpi_` (camelCase in JSON). Placeholder fields
/// (`__tcpi_*`, always 0) and `tcpi_snd_bwnd` (always 0, "no longer used") are left
/// out. Times are **microseconds**; sizes are bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FreeBsdTcpInfo {
    /// Bytes the kernel returned.
    pub len: usize,
    /// `kern.osreldate` the record was decoded for (`None`: unknown, release-gated fields
    /// left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub osreldate: Option<u32>,
    /// `tcpi_state`: BSD numbering (0 CLOSED … 4 ESTABLISHED … 10 TIME_WAIT).
    pub state: u8,
    /// `tcpi_options`: [`opt`] flags.
    pub options: u8,
    /// `tcpi_snd_wscale` (4-bit field): send-side window-scale shift.
    pub snd_wscale: u8,
    /// `tcpi_rcv_wscale` (4-bit field): receive-side window-scale shift.
    pub rcv_wscale: u8,
    /// `tcpi_rto`, µs: the current retransmission timeout.
    pub rto: u32,
    /// `tcpi_snd_mss`, bytes.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`, bytes (the kernel reports `t_maxseg` for both).
    pub rcv_mss: u32,
    /// `tcpi_last_data_recv`, µs since data was last received (tick resolution).
    pub last_data_recv: u32,
    /// `tcpi_rtt`, µs: smoothed RTT.
    pub rtt: u32,
    /// `tcpi_rttvar`, µs: RTT variance.
    pub rttvar: u32,
    /// `tcpi_snd_ssthresh`, bytes ([`FREEBSD_INITIAL_SSTHRESH`] until first set).
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`, bytes.
    pub snd_cwnd: u32,
    /// `tcpi_rcv_space`, bytes: our receive window (`rcv_wnd`).
    pub rcv_space: u32,
    /// `tcpi_snd_wnd`, bytes: the window the peer advertised.
    pub snd_wnd: u32,
    /// `tcpi_snd_nxt`: next sequence number to send.
    pub snd_nxt: u32,
    /// `tcpi_rcv_nxt`: next sequence number expected.
    pub rcv_nxt: u32,
    /// `tcpi_toe_tid`: TOE hardware connection id (0 without TOE).
    pub toe_tid: u32,
    /// `tcpi_snd_rexmitpack`: packets retransmitted.
    pub snd_rexmitpack: u32,
    /// `tcpi_rcv_ooopack`: out-of-order packets received.
    pub rcv_ooopack: u32,
    /// `tcpi_snd_zerowin`: zero windows sent.
    pub snd_zerowin: u32,
    /// `tcpi_delivered_ce` (14.0+): CE-marked packets delivered (AccECN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ce: Option<u32>,
    /// `tcpi_received_ce` (14.0+): CE marks received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_ce: Option<u32>,
    /// `tcpi_total_tlp` (14.0+): tail-loss probes sent. Filled by the RACK/BBR stacks;
    /// the default stack leaves it 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tlp: Option<u32>,
    /// `tcpi_total_tlp_bytes` (14.0+): bytes sent by tail-loss probes (same remark).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tlp_bytes: Option<u64>,
    /// `tcpi_snd_una` (13.3+): oldest unacknowledged sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_una: Option<u32>,
    /// `tcpi_snd_max` (13.3+): highest sequence number sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_max: Option<u32>,
    /// `tcpi_rcv_numsacks` (13.3+): distinct SACK blocks held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_numsacks: Option<u32>,
    /// `tcpi_rcv_adv` (13.3+): a **sequence number**, the right edge of the window we
    /// advertised (despite the header's "window" comment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_adv: Option<u32>,
    /// `tcpi_dupacks` (13.3+): consecutive duplicate ACKs received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dupacks: Option<u32>,
}

// `tcpi_snd_wscale:4, tcpi_rcv_wscale:4` share byte 6: C bitfields fill from the least
// significant bit on little-endian targets, from the most significant on big-endian ones.
#[cfg(target_endian = "little")]
fn wscale_nibbles(b: u8) -> (u8, u8) {
    (b & 0x0f, b >> 4)
}
#[cfg(target_endian = "big")]
fn wscale_nibbles(b: u8) -> (u8, u8) {
    (b >> 4, b & 0x0f)
}

/// Whether a kernel of `osreldate` fills offsets 176–195 (13.3+ and 14.0+).
fn has_13_3_fields(osreldate: u32) -> bool {
    (FREEBSD_13_3..1_400_000).contains(&osreldate) || osreldate >= FREEBSD_14_0
}

impl FreeBsdTcpInfo {
    /// Decodes `buf`, the bytes `getsockopt(TCP_INFO)` returned, from a kernel whose
    /// `kern.osreldate` is `osreldate` (`None` when unknown: only the fields every
    /// release fills are decoded).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`FREEBSD_MIN_LEN`].
    ///
    /// ```
    /// use conniver::tcpinfo::freebsd::{FreeBsdTcpInfo, FREEBSD_14_0};
    /// let mut buf = [0u8; 240];
    /// buf[0] = 4; // ESTABLISHED
    /// buf[68..72].copy_from_slice(&1500u32.to_ne_bytes()); // tcpi_rtt, µs
    /// let raw = FreeBsdTcpInfo::decode(&buf, Some(FREEBSD_14_0)).unwrap();
    /// assert_eq!(raw.to_info().rtt, Some(std::time::Duration::from_micros(1500)));
    /// assert_eq!(raw.dupacks, Some(0)); // a 14.0 field, really 0
    /// let old = FreeBsdTcpInfo::decode(&buf, Some(1_302_000)).unwrap(); // 13.2
    /// assert_eq!(old.dupacks, None); // zero padding there, not a count
    /// ```
    pub fn decode(buf: &[u8], osreldate: Option<u32>) -> Result<Self> {
        if buf.len() < FREEBSD_MIN_LEN {
            return Err(Error::Truncated {
                len: buf.len(),
                min: FREEBSD_MIN_LEN,
            });
        }
        // Inside the minimum length every read succeeds; `unwrap_or_default` is never taken.
        let b = |off| u8_at(buf, off).unwrap_or_default();
        let w = |off| u32_at(buf, off).unwrap_or_default();
        let v13_3 = osreldate.is_some_and(has_13_3_fields);
        let v14_0 = osreldate.is_some_and(|r| r >= FREEBSD_14_0);
        let since_13_3 = |off| u32_at(buf, off).filter(|_| v13_3);
        let since_14_0 = |off| u32_at(buf, off).filter(|_| v14_0);
        let (snd_wscale, rcv_wscale) = wscale_nibbles(b(6));
        Ok(FreeBsdTcpInfo {
            len: buf.len(),
            osreldate,
            state: b(0),
            options: b(5),
            snd_wscale,
            rcv_wscale,
            rto: w(8),
            snd_mss: w(16),
            rcv_mss: w(20),
            last_data_recv: w(52),
            rtt: w(68),
            rttvar: w(72),
            snd_ssthresh: w(76),
            snd_cwnd: w(80),
            rcv_space: w(96),
            snd_wnd: w(100),
            snd_nxt: w(108),
            rcv_nxt: w(112),
            toe_tid: w(116),
            snd_rexmitpack: w(120),
            rcv_ooopack: w(124),
            snd_zerowin: w(128),
            delivered_ce: since_14_0(132),
            received_ce: since_14_0(136),
            total_tlp: since_14_0(164),
            total_tlp_bytes: u64_at(buf, 168).filter(|_| v14_0),
            snd_una: since_13_3(176),
            snd_max: since_13_3(180),
            rcv_numsacks: since_13_3(184),
            rcv_adv: since_13_3(188),
            dupacks: since_13_3(192),
        })
    }

    /// The state, mapped from BSD numbering.
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_bsd(self.state)
    }

    fn tcp_options(&self, wscale: u8) -> TcpOptions {
        TcpOptions {
            timestamps: self.options & opt::TIMESTAMPS != 0,
            sack: self.options & opt::SACK != 0,
            window_scale: (self.options & opt::WSCALE != 0).then_some(wscale),
            ecn: self.options & opt::ECN != 0,
            // Not reported by FreeBSD; TFO use is only in `options` (`opt::TFO`).
            ecn_seen: false,
            syn_data: false,
        }
    }

    /// The normalized view.
    ///
    /// - Microseconds become `Duration`s (`rtt`, `rtt_var`, `rto`, `since_last_rx`).
    /// - `tx_ssthresh` (bytes) is `None` while it holds the initial
    ///   [`FREEBSD_INITIAL_SSTHRESH`] ("no threshold yet").
    /// - `cwnd_bytes` is `tcpi_snd_cwnd`; `cwnd_segs` stays `None`.
    /// - `rx_window` is `tcpi_rcv_space` (FreeBSD fills it with `rcv_wnd`), `tx_window`
    ///   is `tcpi_snd_wnd`.
    /// - `total_retrans` is `tcpi_snd_rexmitpack`; `retransmits` stays `None`.
    /// - `bytes_in_flight` (13.3+) is `tcpi_snd_max − tcpi_snd_una` (sequence space, so a
    ///   SYN or FIN in flight counts 1).
    pub fn to_info(&self) -> Info {
        let us = |v: u32| Duration::from_micros(u64::from(v));
        let mut info = Info::empty(SysInfo::FreeBsd(*self));
        info.state = Some(self.tcp_state());
        info.tx_options = Some(self.tcp_options(self.snd_wscale));
        info.rx_options = Some(self.tcp_options(self.rcv_wscale));
        info.tx_mss = Some(self.snd_mss);
        info.rx_mss = Some(self.rcv_mss);
        info.rtt = Some(us(self.rtt));
        info.rtt_var = Some(us(self.rttvar));
        info.rto = Some(us(self.rto));
        info.since_last_rx = Some(us(self.last_data_recv));
        info.rx_window = Some(self.rcv_space);
        info.tx_window = Some(self.snd_wnd);
        info.tx_ssthresh = Some(self.snd_ssthresh).filter(|&v| v != FREEBSD_INITIAL_SSTHRESH);
        info.cwnd_bytes = Some(u64::from(self.snd_cwnd));
        info.total_retrans = Some(self.snd_rexmitpack);
        info.bytes_in_flight = self
            .snd_max
            .zip(self.snd_una)
            .map(|(max, una)| max.wrapping_sub(una));
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcpinfo::fixture::{C, CStruct, noise};

    /// Which `sys/netinet/tcp.h` declaration to lay out.
    #[derive(Clone, Copy, PartialEq)]
    enum Header {
        /// 10.x – 13.2: `__tcpi_pad[26]` after `tcpi_snd_zerowin`.
        Up13_2,
        /// 13.3: the 14.0 fields exist as reserved `__tcpi_*` members (written 0).
        V13_3,
        /// 14.x: every field, `__tcpi_pad[10]`.
        V14,
    }

    const WSCALE_BYTE: u8 = if cfg!(target_endian = "little") {
        0x7 | (0x9 << 4) // snd 7, rcv 9
    } else {
        (0x7 << 4) | 0x9
    };

    /// `struct tcp_info` member by member, offsets asserted against the reference.
    fn header_layout(h: Header) -> Vec<u8> {
        let mut s = CStruct::new();
        assert_eq!(s.field(C::U8, 4), 0); // tcpi_state
        assert_eq!(s.field(C::U8, 0), 1); // __tcpi_ca_state
        assert_eq!(s.field(C::U8, 0), 2); // __tcpi_retransmits
        assert_eq!(s.field(C::U8, 0), 3); // __tcpi_probes
        assert_eq!(s.field(C::U8, 0), 4); // __tcpi_backoff
        let options = opt::TIMESTAMPS | opt::SACK | opt::WSCALE | opt::ECN;
        assert_eq!(s.field(C::U8, options.into()), 5); // tcpi_options
        assert_eq!(s.field(C::U8, WSCALE_BYTE.into()), 6); // tcpi_snd_wscale:4, tcpi_rcv_wscale:4
        assert_eq!(s.field(C::U32, 230_000), 8); // tcpi_rto (after 1 byte of padding)
        assert_eq!(s.field(C::U32, 0), 12); // __tcpi_ato
        assert_eq!(s.field(C::U32, 1_448), 16); // tcpi_snd_mss
        assert_eq!(s.field(C::U32, 1_449), 20); // tcpi_rcv_mss
        // __tcpi_unacked … __tcpi_last_ack_sent
        assert_eq!(s.field(C::U32Array(7), 0), 24);
        assert_eq!(s.field(C::U32, 12_000), 52); // tcpi_last_data_recv
        assert_eq!(s.field(C::U32Array(3), 0), 56); // __tcpi_last_ack_recv, pmtu, rcv_ssthresh
        assert_eq!(s.field(C::U32, 3_100), 68); // tcpi_rtt
        assert_eq!(s.field(C::U32, 1_200), 72); // tcpi_rttvar
        assert_eq!(s.field(C::U32, 40_000), 76); // tcpi_snd_ssthresh
        assert_eq!(s.field(C::U32, 57_920), 80); // tcpi_snd_cwnd
        assert_eq!(s.field(C::U32Array(3), 0), 84); // __tcpi_advmss, reordering, rcv_rtt
        assert_eq!(s.field(C::U32, 65_700), 96); // tcpi_rcv_space
        assert_eq!(s.field(C::U32, 64_240), 100); // tcpi_snd_wnd
        assert_eq!(s.field(C::U32, 0), 104); // tcpi_snd_bwnd
        assert_eq!(s.field(C::U32, 1_000_500), 108); // tcpi_snd_nxt
        assert_eq!(s.field(C::U32, 7_000_000), 112); // tcpi_rcv_nxt
        assert_eq!(s.field(C::U32, 0), 116); // tcpi_toe_tid
        assert_eq!(s.field(C::U32, 13), 120); // tcpi_snd_rexmitpack
        assert_eq!(s.field(C::U32, 14), 124); // tcpi_rcv_ooopack
        assert_eq!(s.field(C::U32, 15), 128); // tcpi_snd_zerowin
        if h == Header::Up13_2 {
            assert_eq!(s.field(C::U32Array(26), 0), 132); // __tcpi_pad[26]
            return s.finish();
        }
        let v14 = h == Header::V14;
        let only14 = |v: u64| if v14 { v } else { 0 };
        assert_eq!(s.field(C::U32, only14(16)), 132); // tcpi_delivered_ce
        assert_eq!(s.field(C::U32, only14(17)), 136); // tcpi_received_ce
        // __tcpi_{delivered,received}_{e1,e0,ce}_bytes
        assert_eq!(s.field(C::U32Array(6), 0), 140);
        assert_eq!(s.field(C::U32, only14(18)), 164); // tcpi_total_tlp
        assert_eq!(s.field(C::U64, only14((1 << 40) + 19)), 168); // tcpi_total_tlp_bytes
        // The 13.3 fields: at 176 only because the u64 above is 8-aligned (amd64).
        assert_eq!(s.field(C::U32, 1_000_000), 176); // tcpi_snd_una
        assert_eq!(s.field(C::U32, 1_000_500), 180); // tcpi_snd_max
        assert_eq!(s.field(C::U32, 2), 184); // tcpi_rcv_numsacks
        assert_eq!(s.field(C::U32, 7_065_700), 188); // tcpi_rcv_adv
        assert_eq!(s.field(C::U32, 1), 192); // tcpi_dupacks
        assert_eq!(s.field(C::U32Array(10), 0), 196); // __tcpi_pad[10]
        s.finish()
    }

    #[test]
    fn sizes_match_the_header() {
        assert_eq!(header_layout(Header::Up13_2).len(), 236);
        assert_eq!(header_layout(Header::V13_3).len(), 240);
        assert_eq!(header_layout(Header::V14).len(), 240);
    }

    fn assert_common(raw: &FreeBsdTcpInfo) {
        assert_eq!(raw.state, 4);
        assert_eq!(raw.options, 0x0f);
        assert_eq!((raw.snd_wscale, raw.rcv_wscale), (7, 9));
        assert_eq!(raw.rto, 230_000);
        assert_eq!((raw.snd_mss, raw.rcv_mss), (1_448, 1_449));
        assert_eq!(raw.last_data_recv, 12_000);
        assert_eq!((raw.rtt, raw.rttvar), (3_100, 1_200));
        assert_eq!((raw.snd_ssthresh, raw.snd_cwnd), (40_000, 57_920));
        assert_eq!((raw.rcv_space, raw.snd_wnd), (65_700, 64_240));
        assert_eq!(
            (raw.snd_nxt, raw.rcv_nxt, raw.toe_tid),
            (1_000_500, 7_000_000, 0)
        );
        assert_eq!(
            (raw.snd_rexmitpack, raw.rcv_ooopack, raw.snd_zerowin),
            (13, 14, 15)
        );
    }

    #[test]
    fn a_14_0_kernel_fills_every_field() {
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::V14), Some(1_400_097)).unwrap();
        assert_eq!(raw.len, 240);
        assert_common(&raw);
        assert_eq!(raw.delivered_ce, Some(16));
        assert_eq!(raw.received_ce, Some(17));
        assert_eq!(raw.total_tlp, Some(18));
        assert_eq!(raw.total_tlp_bytes, Some((1 << 40) + 19));
        assert_eq!(raw.snd_una, Some(1_000_000));
        assert_eq!(raw.snd_max, Some(1_000_500));
        assert_eq!(raw.rcv_numsacks, Some(2));
        assert_eq!(raw.rcv_adv, Some(7_065_700));
        assert_eq!(raw.dupacks, Some(1));

        let info = raw.to_info();
        assert_eq!(info.state, Some(TcpState::Established));
        let tx = info.tx_options.unwrap();
        assert!(tx.timestamps && tx.sack && tx.ecn);
        assert_eq!(tx.window_scale, Some(7));
        assert_eq!(info.rx_options.unwrap().window_scale, Some(9));
        assert_eq!((info.tx_mss, info.rx_mss), (Some(1_448), Some(1_449)));
        assert_eq!(info.rtt, Some(Duration::from_micros(3_100)));
        assert_eq!(info.rtt_var, Some(Duration::from_micros(1_200)));
        assert_eq!(info.rto, Some(Duration::from_millis(230)));
        assert_eq!(info.since_last_rx, Some(Duration::from_millis(12)));
        assert_eq!(info.tx_ssthresh, Some(40_000));
        assert_eq!(info.cwnd_bytes, Some(57_920));
        assert_eq!(info.cwnd_segs, None);
        assert_eq!(info.rx_window, Some(65_700));
        assert_eq!(info.tx_window, Some(64_240));
        assert_eq!(info.total_retrans, Some(13));
        assert_eq!(info.retransmits, None);
        assert_eq!(info.bytes_in_flight, Some(500));
        assert_eq!(info.since_last_tx, None);
        assert!(matches!(info.sys(), SysInfo::FreeBsd(r) if *r == raw));

        let json = serde_json::to_value(raw).unwrap();
        assert_eq!(json["sndRexmitpack"], 13);
        assert_eq!(json["totalTlpBytes"], (1u64 << 40) + 19);
        assert_eq!(json["osreldate"], 1_400_097);
    }

    #[test]
    fn a_13_2_kernel_has_no_fields_past_132() {
        // 13.2 returns 236 bytes of which 132.. are zero padding: nothing there is data.
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::Up13_2), Some(1_302_000)).unwrap();
        assert_eq!(raw.len, 236);
        assert_common(&raw);
        for field in [
            raw.delivered_ce,
            raw.received_ce,
            raw.total_tlp,
            raw.snd_una,
            raw.snd_max,
            raw.rcv_numsacks,
            raw.rcv_adv,
            raw.dupacks,
        ] {
            assert_eq!(field, None);
        }
        assert_eq!(raw.total_tlp_bytes, None);
        assert_eq!(raw.to_info().bytes_in_flight, None);
        let json = serde_json::to_value(raw).unwrap();
        assert!(json.get("dupacks").is_none());

        // Even a 14.0-shaped buffer is not trusted past 132 for a 13.2 kernel.
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::V14), Some(1_302_000)).unwrap();
        assert_eq!((raw.dupacks, raw.delivered_ce), (None, None));
    }

    #[test]
    fn a_13_3_kernel_has_the_sequence_fields_only() {
        let raw =
            FreeBsdTcpInfo::decode(&header_layout(Header::V13_3), Some(FREEBSD_13_3)).unwrap();
        assert_common(&raw);
        assert_eq!(raw.snd_una, Some(1_000_000));
        assert_eq!(raw.dupacks, Some(1));
        // Reserved (zero) in 13.x: absent, not 0.
        assert_eq!(raw.delivered_ce, None);
        assert_eq!(raw.total_tlp_bytes, None);
        // 13.5 likewise; 14-CURRENT before 14.0-RELEASE is not trusted at all.
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::V13_3), Some(1_305_000)).unwrap();
        assert_eq!((raw.snd_una.is_some(), raw.delivered_ce), (true, None));
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::V14), Some(1_400_050)).unwrap();
        assert_eq!((raw.snd_una, raw.delivered_ce), (None, None));
    }

    #[test]
    fn an_unknown_release_decodes_only_the_common_fields() {
        let raw = FreeBsdTcpInfo::decode(&header_layout(Header::V14), None).unwrap();
        assert_common(&raw);
        assert_eq!((raw.snd_una, raw.delivered_ce), (None, None));
        let json = serde_json::to_value(raw).unwrap();
        assert!(json.get("osreldate").is_none());
    }

    #[test]
    fn a_short_answer_from_a_new_kernel_loses_only_what_is_missing() {
        let mut buf = header_layout(Header::V14);
        buf.truncate(184);
        let raw = FreeBsdTcpInfo::decode(&buf, Some(1_500_000)).unwrap();
        assert_eq!(raw.snd_max, Some(1_000_500));
        assert_eq!(raw.rcv_numsacks, None);
        buf.truncate(FREEBSD_MIN_LEN);
        let raw = FreeBsdTcpInfo::decode(&buf, Some(1_500_000)).unwrap();
        assert_eq!(raw.snd_zerowin, 15);
        assert_eq!(raw.delivered_ce, None);
    }

    #[test]
    fn initial_ssthresh_is_none_in_the_normalized_view() {
        let mut buf = header_layout(Header::V14);
        buf[76..80].copy_from_slice(&FREEBSD_INITIAL_SSTHRESH.to_ne_bytes());
        let raw = FreeBsdTcpInfo::decode(&buf, Some(FREEBSD_14_0)).unwrap();
        assert_eq!(raw.snd_ssthresh, FREEBSD_INITIAL_SSTHRESH);
        assert_eq!(raw.to_info().tx_ssthresh, None);
    }

    #[test]
    fn arbitrary_bytes_of_any_length_never_panic() {
        let releases = [
            None,
            Some(1_302_000),
            Some(FREEBSD_13_3),
            Some(FREEBSD_14_0),
            Some(u32::MAX),
        ];
        for len in 0..512 {
            for (i, rel) in releases.into_iter().enumerate() {
                let buf = noise(len as u64 * 13 + i as u64, len);
                match FreeBsdTcpInfo::decode(&buf, rel) {
                    Ok(raw) => {
                        assert!(len >= FREEBSD_MIN_LEN);
                        assert_eq!(
                            raw.dupacks.is_some(),
                            len >= 196 && rel.is_some_and(has_13_3_fields)
                        );
                        serde_json::to_string(&raw.to_info()).unwrap();
                    }
                    Err(e) => {
                        assert!(len < FREEBSD_MIN_LEN);
                        assert!(matches!(
                            e,
                            Error::Truncated {
                                min: FREEBSD_MIN_LEN,
                                ..
                            }
                        ));
                    }
                }
            }
        }
    }
}
