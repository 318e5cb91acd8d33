//! macOS / iOS `struct tcp_connection_info` (`getsockopt(IPPROTO_TCP, TCP_CONNECTION_INFO)`),
//! decoded from raw bytes.
//!
//! Pure functions, compiled on every target so the layout is tested everywhere. Offsets
//! come from xnu's `bsd/netinet/tcp.h`, not from the `libc` crate, whose declaration of
//! this struct is wrong (it spells the 15 TFO bits as 15 separate `u32`s, putting the
//! counters at offset 120 and the size at 176; the real struct is 112 bytes).
//!
//! | xnu | macOS | bytes |
//! |---|---|---|
//! | xnu-3247 (Darwin 15.0) | 10.11 – 10.12.3 | 104 (no `tcpi_txretransmitpackets`) |
//! | xnu-3789.51 (Darwin 16.5) and later | 10.12.4 + | 112 |
//!
//! The kernel copies `min(optlen, sizeof)` bytes and reports the count, so the returned
//! length alone tells the two layouts apart.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::bytes::{u8_at, u32_at, u64_at};
use super::info::{Info, SysInfo, TcpOptions, TcpState};
use crate::error::{Error, Result};

/// Bytes of `struct tcp_connection_info` on OS X 10.11 – macOS 10.12.3 (the oldest layout).
pub const DARWIN_MIN_LEN: usize = 104;
/// Bytes of `struct tcp_connection_info` since macOS 10.12.4 (ask for this many).
pub const DARWIN_MAX_LEN: usize = 112;

/// `tcpi_snd_ssthresh` of a connection that has not yet set one: `TCP_MAXWIN <<
/// TCP_MAX_WINSHIFT` = 65535 << 14, given to every new connection.
pub const DARWIN_INITIAL_SSTHRESH: u32 = 1_073_725_440;

/// `TCPCI_OPT_*` flags of `tcpi_options`.
pub mod opt {
    /// TCP timestamps negotiated.
    pub const TIMESTAMPS: u32 = 0x1;
    /// SACK negotiated.
    pub const SACK: u32 = 0x2;
    /// Window scaling negotiated (`tcpi_snd_wscale`/`tcpi_rcv_wscale` are valid).
    pub const WSCALE: u32 = 0x4;
    /// ECN negotiated.
    pub const ECN: u32 = 0x8;
}

/// `TCPCI_FLAG_*` flags of `tcpi_flags`.
pub mod flag {
    /// In fast recovery, or the retransmit timer has backed off.
    pub const LOSS_RECOVERY: u32 = 0x1;
    /// Reordering was detected on the connection.
    pub const REORDERING_DETECTED: u32 = 0x2;
}

/// Bits of the TCP Fast Open word at offset 52 (C bitfields, bit 0 first: every Apple
/// target is little-endian).
pub mod tfo {
    /// Cookie requested.
    pub const COOKIE_REQ: u32 = 1 << 0;
    /// Cookie received.
    pub const COOKIE_RCV: u32 = 1 << 1;
    /// Fell back to regular TCP after a SYN loss.
    pub const SYN_LOSS: u32 = 1 << 2;
    /// SYN+data sent.
    pub const SYN_DATA_SENT: u32 = 1 << 3;
    /// SYN+data fully acknowledged (client side).
    pub const SYN_DATA_ACKED: u32 = 1 << 4;
    /// SYN+data with a valid cookie received (server side).
    pub const SYN_DATA_RCV: u32 = 1 << 5;
    /// Cookie request received (server).
    pub const COOKIE_REQ_RCV: u32 = 1 << 6;
    /// Cookie sent (server).
    pub const COOKIE_SENT: u32 = 1 << 7;
    /// Invalid cookie received (server).
    pub const COOKIE_INVALID: u32 = 1 << 8;
    /// Our cookie was wrong (client, 10.12+).
    pub const COOKIE_WRONG: u32 = 1 << 9;
    /// No cookie came back to our request (10.12+).
    pub const NO_COOKIE_RCV: u32 = 1 << 10;
    /// TFO disabled by heuristics (10.12+).
    pub const HEURISTICS_DISABLE: u32 = 1 << 11;
    /// Send black hole detected (10.12+).
    pub const SEND_BLACKHOLE: u32 = 1 << 12;
    /// Receive black hole detected (10.12+).
    pub const RECV_BLACKHOLE: u32 = 1 << 13;
    /// A proxy acknowledged all but one byte of the SYN (10.13+).
    pub const ONEBYTE_PROXY: u32 = 1 << 14;
}

/// The raw macOS `struct tcp_connection_info`, field by field, in kernel units.
///
/// Rust names are xnu's without the `tcpi_` prefix. Times are **milliseconds** (xnu's TCP
/// clock runs at 1000 Hz); sizes are bytes.
///
/// JSON (`sysInfo`) uses the seed library's keys and units so existing consumers keep
/// working: `state` as a name, `txWScale`/`rxWScale`, `txOptions`/`rxOptions` as option
/// names, `mss`, `txSSThreshold`, `txCWindowBytes`, `txWindow`, `txSendBufferBytes`,
/// `rxWindow`, `flags` (comma-separated names), `tfoFlags`, the counters (`txPackets`,
/// `txBytes`, `txRetransmitBytes`, `rxPackets`, `rxBytes`, `rxOutOfOrderBytes`,
/// `txRetransmitPackets`), and `rto`, `rttCur`, `rttSmoothed`, `rttVar` in
/// **nanoseconds**; plus `len`. `txRetransmitPackets` is omitted when the kernel did not
/// return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DarwinTcpConnectionInfo {
    /// Bytes the kernel returned (104 or 112).
    pub len: usize,
    /// `tcpi_state`: BSD numbering (`tcp_fsm.h`: 0 CLOSED … 4 ESTABLISHED … 10 TIME_WAIT).
    pub state: u8,
    /// `tcpi_snd_wscale`: send-side window-scale shift (only meaningful with
    /// [`opt::WSCALE`]).
    pub snd_wscale: u8,
    /// `tcpi_rcv_wscale`: receive-side window-scale shift (same condition).
    pub rcv_wscale: u8,
    /// `tcpi_options`: [`opt`] flags.
    pub options: u32,
    /// `tcpi_flags`: [`flag`] flags.
    pub flags: u32,
    /// `tcpi_rto`, ms: the current retransmission timeout **while a retransmit timer is
    /// armed**, 0 otherwise.
    pub rto: u32,
    /// `tcpi_maxseg`, bytes.
    pub maxseg: u32,
    /// `tcpi_snd_ssthresh`, bytes ([`DARWIN_INITIAL_SSTHRESH`] until first set).
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`, bytes.
    pub snd_cwnd: u32,
    /// `tcpi_snd_wnd`, bytes: the window the peer advertised.
    pub snd_wnd: u32,
    /// `tcpi_snd_sbbytes`, bytes in the send socket buffer (unsent and unacknowledged).
    pub snd_sbbytes: u32,
    /// `tcpi_rcv_wnd`, bytes: receive window still open to the peer.
    pub rcv_wnd: u32,
    /// `tcpi_rttcur`, ms: the most recent RTT sample.
    pub rttcur: u32,
    /// `tcpi_srtt`, ms: smoothed RTT.
    pub srtt: u32,
    /// `tcpi_rttvar`, ms: RTT variance.
    pub rttvar: u32,
    /// The TCP Fast Open bitfield word (`tcpi_tfo_*`, see [`tfo`]).
    pub tfo: u32,
    /// `tcpi_txpackets`: packets sent.
    pub txpackets: u64,
    /// `tcpi_txbytes`: bytes sent.
    pub txbytes: u64,
    /// `tcpi_txretransmitbytes`: bytes retransmitted.
    pub txretransmitbytes: u64,
    /// `tcpi_rxpackets`: packets received.
    pub rxpackets: u64,
    /// `tcpi_rxbytes`: bytes received.
    pub rxbytes: u64,
    /// `tcpi_rxoutoforderbytes`: bytes received out of order.
    pub rxoutoforderbytes: u64,
    /// `tcpi_txretransmitpackets` (macOS 10.12.4+): packets retransmitted; `None` when the
    /// kernel returned the 104-byte layout.
    pub txretransmitpackets: Option<u64>,
}

impl DarwinTcpConnectionInfo {
    /// Decodes `buf`, exactly the bytes `getsockopt(TCP_CONNECTION_INFO)` returned (its
    /// reported length, not the whole buffer).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`DARWIN_MIN_LEN`].
    ///
    /// ```
    /// use conniver::tcpinfo::darwin::DarwinTcpConnectionInfo;
    /// let mut buf = [0u8; 112];
    /// buf[0] = 4; // ESTABLISHED
    /// buf[44..48].copy_from_slice(&7u32.to_ne_bytes()); // srtt 7 ms
    /// let raw = DarwinTcpConnectionInfo::decode(&buf).unwrap();
    /// let info = raw.to_info();
    /// assert_eq!(info.rtt, Some(std::time::Duration::from_millis(7)));
    /// assert_eq!(raw.txretransmitpackets, Some(0)); // 112 bytes: 10.12.4+ field present
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Self> {
        if buf.len() < DARWIN_MIN_LEN {
            return Err(Error::Truncated {
                len: buf.len(),
                min: DARWIN_MIN_LEN,
            });
        }
        // Inside the minimum length every read succeeds; `unwrap_or_default` is never taken.
        let b = |off| u8_at(buf, off).unwrap_or_default();
        let w = |off| u32_at(buf, off).unwrap_or_default();
        let q = |off| u64_at(buf, off).unwrap_or_default();
        Ok(DarwinTcpConnectionInfo {
            len: buf.len(),
            state: b(0),
            snd_wscale: b(1),
            rcv_wscale: b(2),
            options: w(4),
            flags: w(8),
            rto: w(12),
            maxseg: w(16),
            snd_ssthresh: w(20),
            snd_cwnd: w(24),
            snd_wnd: w(28),
            snd_sbbytes: w(32),
            rcv_wnd: w(36),
            rttcur: w(40),
            srtt: w(44),
            rttvar: w(48),
            tfo: w(52),
            txpackets: q(56),
            txbytes: q(64),
            txretransmitbytes: q(72),
            rxpackets: q(80),
            rxbytes: q(88),
            rxoutoforderbytes: q(96),
            txretransmitpackets: u64_at(buf, 104),
        })
    }

    /// The state, mapped from BSD numbering.
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_bsd(self.state)
    }

    /// The negotiated options, with the window-scale shift of one direction.
    fn tcp_options(&self, wscale: u8) -> TcpOptions {
        TcpOptions {
            timestamps: self.options & opt::TIMESTAMPS != 0,
            sack: self.options & opt::SACK != 0,
            window_scale: (self.options & opt::WSCALE != 0).then_some(wscale),
            ecn: self.options & opt::ECN != 0,
            // xnu does not report whether ECT packets were seen.
            ecn_seen: false,
            // Data in the SYN was acknowledged (client) or accepted (server).
            syn_data: self.tfo & (tfo::SYN_DATA_ACKED | tfo::SYN_DATA_RCV) != 0,
        }
    }

    /// The normalized view.
    ///
    /// - Milliseconds become `Duration`s; `rtt` is `tcpi_srtt` (smoothed), not the last
    ///   sample `tcpi_rttcur` (kept in [`sys`](Info::sys)).
    /// - `rto` is `None` when `tcpi_rto` is 0: xnu reports the RTO only while a
    ///   retransmit timer is armed (data outstanding), so 0 means "no timer", not a
    ///   zero timeout.
    /// - `tx_ssthresh` (bytes) is `None` while it still holds the initial
    ///   [`DARWIN_INITIAL_SSTHRESH`] ("no threshold yet"), like Linux's infinite value.
    /// - `cwnd_bytes` is `tcpi_snd_cwnd`; `cwnd_segs` stays `None` (xnu keeps the window
    ///   in bytes; `tcpi_snd_wnd` is the peer's window, reported as `tx_window`).
    /// - `total_retrans` is `tcpi_txretransmitpackets` (10.12.4+; `None` before);
    ///   `retransmits` stays `None`. The 64-bit packet counters keep their low 32 bits in
    ///   the `u32` fields, so they wrap like Linux's.
    pub fn to_info(&self) -> Info {
        let ms = |v: u32| std::time::Duration::from_millis(u64::from(v));
        let mut info = Info::empty(SysInfo::Darwin(*self));
        info.state = Some(self.tcp_state());
        info.tx_options = Some(self.tcp_options(self.snd_wscale));
        info.rx_options = Some(self.tcp_options(self.rcv_wscale));
        info.tx_mss = Some(self.maxseg);
        info.rtt = Some(ms(self.srtt));
        info.rtt_var = Some(ms(self.rttvar));
        info.rto = (self.rto != 0).then(|| ms(self.rto));
        info.rx_window = Some(self.rcv_wnd);
        info.tx_window = Some(self.snd_wnd);
        info.tx_ssthresh = Some(self.snd_ssthresh).filter(|&v| v != DARWIN_INITIAL_SSTHRESH);
        info.cwnd_bytes = Some(u64::from(self.snd_cwnd));
        info.total_retrans = self.txretransmitpackets.map(low32);
        info.bytes_sent = Some(self.txbytes);
        info.bytes_received = Some(self.rxbytes);
        info.bytes_retrans = Some(self.txretransmitbytes);
        info.segs_out = Some(low32(self.txpackets));
        info.segs_in = Some(low32(self.rxpackets));
        info
    }
}

/// The low 32 bits of a 64-bit kernel counter: wraps like a `u32` counter would.
fn low32(v: u64) -> u32 {
    (v & u64::from(u32::MAX)) as u32
}

/// `tcpi_flags` as the seed prints them: `"LOSS_RECOVERY,REORDERING_DETECTED"`.
struct FlagNames(u32);

impl std::fmt::Display for FlagNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (flag::LOSS_RECOVERY, "LOSS_RECOVERY"),
            (flag::REORDERING_DETECTED, "REORDERING_DETECTED"),
        ];
        let mut sep = "";
        for (bit, name) in names {
            if self.0 & bit != 0 {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

impl Serialize for DarwinTcpConnectionInfo {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // Go `time.Duration` of a millisecond value: nanoseconds (fits: u32::MAX ms ≈ 4.3e15 ns).
        let ns = |ms: u32| u64::from(ms) * 1_000_000;
        let mut st = s.serialize_struct("DarwinTcpConnectionInfo", 25)?;
        st.serialize_field("len", &self.len)?;
        st.serialize_field("state", &self.tcp_state())?;
        st.serialize_field("txWScale", &self.snd_wscale)?;
        st.serialize_field("rxWScale", &self.rcv_wscale)?;
        st.serialize_field("txOptions", &self.tcp_options(self.snd_wscale))?;
        st.serialize_field("rxOptions", &self.tcp_options(self.rcv_wscale))?;
        st.serialize_field("flags", &format_args!("{}", FlagNames(self.flags)))?;
        st.serialize_field("rto", &ns(self.rto))?;
        st.serialize_field("mss", &self.maxseg)?;
        st.serialize_field("txSSThreshold", &self.snd_ssthresh)?;
        st.serialize_field("txCWindowBytes", &self.snd_cwnd)?;
        st.serialize_field("txWindow", &self.snd_wnd)?;
        st.serialize_field("txSendBufferBytes", &self.snd_sbbytes)?;
        st.serialize_field("rxWindow", &self.rcv_wnd)?;
        st.serialize_field("rttCur", &ns(self.rttcur))?;
        st.serialize_field("rttSmoothed", &ns(self.srtt))?;
        st.serialize_field("rttVar", &ns(self.rttvar))?;
        st.serialize_field("tfoFlags", &self.tfo)?;
        st.serialize_field("txPackets", &self.txpackets)?;
        st.serialize_field("txBytes", &self.txbytes)?;
        st.serialize_field("txRetransmitBytes", &self.txretransmitbytes)?;
        st.serialize_field("rxPackets", &self.rxpackets)?;
        st.serialize_field("rxBytes", &self.rxbytes)?;
        st.serialize_field("rxOutOfOrderBytes", &self.rxoutoforderbytes)?;
        match self.txretransmitpackets {
            Some(v) => st.serialize_field("txRetransmitPackets", &v)?,
            None => st.skip_field("txRetransmitPackets")?,
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tcpinfo::fixture::{C, CStruct, noise};

    /// Values for every member, in declaration order; distinct so a swapped offset shows.
    #[derive(Clone, Copy)]
    struct Fields {
        state: u8,
        snd_wscale: u8,
        rcv_wscale: u8,
        options: u32,
        flags: u32,
        rto: u32,
        maxseg: u32,
        snd_ssthresh: u32,
        snd_cwnd: u32,
        snd_wnd: u32,
        snd_sbbytes: u32,
        rcv_wnd: u32,
        rttcur: u32,
        srtt: u32,
        rttvar: u32,
        tfo: u32,
        counters: [u64; 7],
    }

    /// `struct tcp_connection_info` from xnu's `bsd/netinet/tcp.h`, member by member,
    /// with each offset asserted against the reference table. `with_txretransmitpackets`
    /// selects the 10.12.4+ declaration (112 bytes) or the 10.11 one (104).
    fn header_layout(f: Fields, with_txretransmitpackets: bool) -> Vec<u8> {
        let mut s = CStruct::new();
        assert_eq!(s.field(C::U8, f.state.into()), 0); // tcpi_state
        assert_eq!(s.field(C::U8, f.snd_wscale.into()), 1); // tcpi_snd_wscale
        assert_eq!(s.field(C::U8, f.rcv_wscale.into()), 2); // tcpi_rcv_wscale
        assert_eq!(s.field(C::U8, 0), 3); // __pad1
        assert_eq!(s.field(C::U32, f.options.into()), 4); // tcpi_options
        assert_eq!(s.field(C::U32, f.flags.into()), 8); // tcpi_flags
        assert_eq!(s.field(C::U32, f.rto.into()), 12); // tcpi_rto
        assert_eq!(s.field(C::U32, f.maxseg.into()), 16); // tcpi_maxseg
        assert_eq!(s.field(C::U32, f.snd_ssthresh.into()), 20); // tcpi_snd_ssthresh
        assert_eq!(s.field(C::U32, f.snd_cwnd.into()), 24); // tcpi_snd_cwnd
        assert_eq!(s.field(C::U32, f.snd_wnd.into()), 28); // tcpi_snd_wnd
        assert_eq!(s.field(C::U32, f.snd_sbbytes.into()), 32); // tcpi_snd_sbbytes
        assert_eq!(s.field(C::U32, f.rcv_wnd.into()), 36); // tcpi_rcv_wnd
        assert_eq!(s.field(C::U32, f.rttcur.into()), 40); // tcpi_rttcur
        assert_eq!(s.field(C::U32, f.srtt.into()), 44); // tcpi_srtt
        assert_eq!(s.field(C::U32, f.rttvar.into()), 48); // tcpi_rttvar
        // tcpi_tfo_cookie_req:1 … tcpi_tfo_onebyte_proxy:1, __pad2:17 — one u32 unit.
        assert_eq!(s.field(C::U32, f.tfo.into()), 52);
        // The u64 counters carry __attribute__((aligned(8))).
        let [txp, txb, txrb, rxp, rxb, rxooo, txrp] = f.counters;
        assert_eq!(s.field(C::U64, txp), 56); // tcpi_txpackets
        assert_eq!(s.field(C::U64, txb), 64); // tcpi_txbytes
        assert_eq!(s.field(C::U64, txrb), 72); // tcpi_txretransmitbytes
        assert_eq!(s.field(C::U64, rxp), 80); // tcpi_rxpackets
        assert_eq!(s.field(C::U64, rxb), 88); // tcpi_rxbytes
        assert_eq!(s.field(C::U64, rxooo), 96); // tcpi_rxoutoforderbytes
        if with_txretransmitpackets {
            assert_eq!(s.field(C::U64, txrp), 104); // tcpi_txretransmitpackets
        }
        s.finish()
    }

    fn sample() -> Fields {
        Fields {
            state: 4,
            snd_wscale: 8,
            rcv_wscale: 6,
            options: opt::TIMESTAMPS | opt::SACK | opt::WSCALE,
            flags: flag::REORDERING_DETECTED,
            rto: 207,
            maxseg: 1400,
            snd_ssthresh: 28_000,
            snd_cwnd: 14_000,
            snd_wnd: 65_535,
            snd_sbbytes: 3_333,
            rcv_wnd: 131_648,
            rttcur: 9,
            srtt: 7,
            rttvar: 3,
            tfo: tfo::COOKIE_REQ | tfo::SYN_DATA_ACKED,
            counters: [1_001, 1_400_002, 2_803, 904, 5_005, 606, (1 << 32) + 7],
        }
    }

    #[test]
    fn sizes_match_the_header() {
        assert_eq!(header_layout(sample(), true).len(), DARWIN_MAX_LEN);
        assert_eq!(header_layout(sample(), false).len(), DARWIN_MIN_LEN);
    }

    #[test]
    fn decodes_every_field_of_the_112_byte_layout() {
        let f = sample();
        let raw = DarwinTcpConnectionInfo::decode(&header_layout(f, true)).unwrap();
        assert_eq!(raw.len, 112);
        assert_eq!(raw.state, f.state);
        assert_eq!(raw.snd_wscale, f.snd_wscale);
        assert_eq!(raw.rcv_wscale, f.rcv_wscale);
        assert_eq!(raw.options, f.options);
        assert_eq!(raw.flags, f.flags);
        assert_eq!(raw.rto, f.rto);
        assert_eq!(raw.maxseg, f.maxseg);
        assert_eq!(raw.snd_ssthresh, f.snd_ssthresh);
        assert_eq!(raw.snd_cwnd, f.snd_cwnd);
        assert_eq!(raw.snd_wnd, f.snd_wnd);
        assert_eq!(raw.snd_sbbytes, f.snd_sbbytes);
        assert_eq!(raw.rcv_wnd, f.rcv_wnd);
        assert_eq!(raw.rttcur, f.rttcur);
        assert_eq!(raw.srtt, f.srtt);
        assert_eq!(raw.rttvar, f.rttvar);
        assert_eq!(raw.tfo, f.tfo);
        assert_eq!(
            [
                raw.txpackets,
                raw.txbytes,
                raw.txretransmitbytes,
                raw.rxpackets,
                raw.rxbytes,
                raw.rxoutoforderbytes,
                raw.txretransmitpackets.unwrap(),
            ],
            f.counters
        );

        let info = raw.to_info();
        assert_eq!(info.state, Some(TcpState::Established));
        let tx = info.tx_options.unwrap();
        assert!(tx.timestamps && tx.sack && !tx.ecn && tx.syn_data);
        assert_eq!(tx.window_scale, Some(8));
        assert_eq!(info.rx_options.unwrap().window_scale, Some(6));
        assert_eq!(info.tx_mss, Some(1400));
        assert_eq!(info.rx_mss, None);
        assert_eq!(info.rtt, Some(Duration::from_millis(7)));
        assert_eq!(info.rtt_var, Some(Duration::from_millis(3)));
        assert_eq!(info.rto, Some(Duration::from_millis(207)));
        assert_eq!(info.rx_window, Some(131_648));
        assert_eq!(info.tx_window, Some(65_535));
        assert_eq!(info.tx_ssthresh, Some(28_000));
        assert_eq!(info.cwnd_bytes, Some(14_000));
        // Not the peer's window (the seed's mistake): xnu has no segment count.
        assert_eq!(info.cwnd_segs, None);
        assert_eq!(info.retransmits, None);
        assert_eq!(info.total_retrans, Some(7)); // low 32 bits of 2^32 + 7
        assert_eq!(info.bytes_sent, Some(1_400_002));
        assert_eq!(info.bytes_retrans, Some(2_803));
        assert_eq!(info.bytes_received, Some(5_005));
        assert_eq!(info.segs_out, Some(1_001));
        assert_eq!(info.segs_in, Some(904));
        assert_eq!(info.min_rtt, None);
        assert_eq!(info.bytes_in_flight, None);
        assert!(matches!(info.sys(), SysInfo::Darwin(r) if *r == raw));
    }

    #[test]
    fn the_104_byte_layout_has_no_retransmitted_packet_count() {
        let raw = DarwinTcpConnectionInfo::decode(&header_layout(sample(), false)).unwrap();
        assert_eq!(raw.len, 104);
        assert_eq!(raw.rxoutoforderbytes, 606);
        assert_eq!(raw.txretransmitpackets, None);
        // Unavailable, not a fake 0.
        assert_eq!(raw.to_info().total_retrans, None);
        let json = serde_json::to_value(raw).unwrap();
        assert!(json.get("txRetransmitPackets").is_none());
        // The returned length rules, even if a caller passes the whole 112-byte buffer
        // with stale bytes after 104: only `len` decides.
        let mut buf = header_layout(sample(), true);
        buf.truncate(104);
        assert_eq!(
            DarwinTcpConnectionInfo::decode(&buf)
                .unwrap()
                .txretransmitpackets,
            None
        );
    }

    /// The seed README's example output, reproduced from a kernel buffer.
    #[test]
    fn seed_readme_example() {
        let f = Fields {
            state: 4,
            snd_wscale: 8,
            rcv_wscale: 6,
            options: opt::TIMESTAMPS | opt::SACK | opt::WSCALE,
            flags: 0,
            rto: 0,
            maxseg: 1400,
            snd_ssthresh: DARWIN_INITIAL_SSTHRESH,
            snd_cwnd: 14_000,
            snd_wnd: 65_535,
            snd_sbbytes: 0,
            rcv_wnd: 131_648,
            rttcur: 7,
            srtt: 7,
            rttvar: 3,
            tfo: 0,
            counters: [0; 7],
        };
        let raw = DarwinTcpConnectionInfo::decode(&header_layout(f, true)).unwrap();
        let seed = serde_json::json!({
          "state": "ESTABLISHED",
          "txWScale": 8,
          "rxWScale": 6,
          "txOptions": ["Timestamps", "SACK", "WindowScale:08"],
          "rxOptions": ["Timestamps", "SACK", "WindowScale:06"],
          "mss": 1400,
          "txSSThreshold": 1073725440,
          "txCWindowBytes": 14000,
          "txWindow": 65535,
          "rxWindow": 131648,
          "rttCur": 7000000,
          "rttSmoothed": 7000000,
          "rttVar": 3000000
        });
        let sys = serde_json::to_value(raw).unwrap();
        for (key, want) in seed.as_object().unwrap() {
            assert_eq!(sys.get(key), Some(want), "sysInfo.{key}");
        }

        let info = raw.to_info();
        let json = serde_json::to_value(info).unwrap();
        assert_eq!(json["state"], "ESTABLISHED");
        assert_eq!(json["txMSS"], 1400);
        assert_eq!(json["rtt"], 7_000_000);
        assert_eq!(json["rttVar"], 3_000_000);
        assert_eq!(json["txCWindowBytes"], 14_000);
        assert_eq!(json["txWindow"], 65_535);
        assert_eq!(json["rxWindow"], 131_648);
        assert_eq!(json["txOptions"], seed["txOptions"]);
        assert_eq!(json["rxOptions"], seed["rxOptions"]);
        // The initial ssthresh means "none yet": absent from the normalized view, kept
        // verbatim in sysInfo.
        assert_eq!(info.tx_ssthresh, None);
        assert!(json.get("txSSThreshold").is_none());
        assert_eq!(json["sysInfo"]["txSSThreshold"], 1_073_725_440u64);
        // No retransmit timer armed: no RTO, rather than a zero one.
        assert_eq!(info.rto, None);
        assert!(json.get("rto").is_none());
        assert!(json.get("txCWindowSegs").is_none());
    }

    #[test]
    fn flags_serialize_as_names() {
        let mut buf = header_layout(sample(), true);
        buf[8..12]
            .copy_from_slice(&(flag::LOSS_RECOVERY | flag::REORDERING_DETECTED).to_ne_bytes());
        let raw = DarwinTcpConnectionInfo::decode(&buf).unwrap();
        let json = serde_json::to_value(raw).unwrap();
        assert_eq!(json["flags"], "LOSS_RECOVERY,REORDERING_DETECTED");
        assert_eq!(json["rto"], 207_000_000u64);
    }

    #[test]
    fn short_buffers_are_truncated_not_zero() {
        for len in 0..DARWIN_MIN_LEN {
            let buf = vec![0u8; len];
            assert!(matches!(
                DarwinTcpConnectionInfo::decode(&buf),
                Err(Error::Truncated { len: l, min: DARWIN_MIN_LEN }) if l == len
            ));
        }
    }

    #[test]
    fn arbitrary_bytes_of_any_length_never_panic() {
        for len in 0..512 {
            for seed in 0..4 {
                let buf = noise(len as u64 * 31 + seed, len);
                if let Ok(raw) = DarwinTcpConnectionInfo::decode(&buf) {
                    assert_eq!(raw.txretransmitpackets.is_some(), len >= 112);
                    let info = raw.to_info();
                    serde_json::to_string(&info).unwrap();
                } else {
                    assert!(len < DARWIN_MIN_LEN);
                }
            }
        }
    }
}
