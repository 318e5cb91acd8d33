//! Windows `TCP_INFO_v0` / `TCP_INFO_v1` / `TCP_INFO_v2` (`WSAIoctl(SIO_TCP_INFO)`),
//! decoded from raw bytes.
//!
//! Pure functions, compiled on every target. Offsets are those of the SDK's `mstcpip.h`;
//! `windows-sys` has no `TCP_INFO_v2`, and its `TimestampsEnabled: bool` would make any
//! byte other than 0/1 undefined behaviour, so the bytes are read by offset.
//!
//! | version | bytes | since |
//! |---|---|---|
//! | 0 | 88 | Windows 10 1703 / Server 2016 |
//! | 1 | 136 | Windows 10 1809 / Server 2019 (`NTDDI_WIN10_RS5`) |
//! | 2 | 152 | Windows 11 24H2 / Server 2025 (`NTDDI_WIN11_GA`, inferred from the SDK guard) |
//!
//! Each version extends the previous one without moving it; every `ULONG64` sits on an
//! 8-aligned offset, so the layout is the same on x86, x64 and ARM64.

use std::time::Duration;

use serde::Serialize;

use super::bytes::{i32_at, u8_at, u32_at, u64_at};
use super::info::{Info, SysInfo, TcpState};
use crate::error::{Error, Result};

/// Bytes of `TCP_INFO_v0`.
pub const WINDOWS_V0_LEN: usize = 88;
/// Bytes of `TCP_INFO_v1`.
pub const WINDOWS_V1_LEN: usize = 136;
/// Bytes of `TCP_INFO_v2` (declared by hand: not in `windows-sys`).
pub const WINDOWS_V2_LEN: usize = 152;
/// The newest structure version conniver knows (ask for this one first).
pub const WINDOWS_MAX_VERSION: u32 = 2;

/// Bytes of `TCP_INFO_v{version}` (`None` for an unknown version).
pub const fn windows_len(version: u32) -> Option<usize> {
    match version {
        0 => Some(WINDOWS_V0_LEN),
        1 => Some(WINDOWS_V1_LEN),
        2 => Some(WINDOWS_V2_LEN),
        _ => None,
    }
}

/// The raw `TCP_INFO_v*` record, in the SDK's units (names say them: `Ms`, `Us`).
///
/// Rust names are the SDK's in snake case (camelCase in JSON: `rttUs`,
/// `connectionTimeMs`…). The v1 and v2 extensions are `None` unless that version was
/// asked for and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WindowsTcpInfo {
    /// Structure version decoded (0, 1 or 2).
    pub version: u32,
    /// Bytes the kernel returned.
    pub len: usize,
    /// `State`: `TCPSTATE` (Windows numbering: 0 CLOSED, 1 LISTEN, 2 SYN_SENT,
    /// 3 SYN_RCVD, 4 ESTABLISHED, 5 FIN_WAIT_1, 6 FIN_WAIT_2, 7 CLOSE_WAIT, 8 CLOSING,
    /// 9 LAST_ACK, 10 TIME_WAIT).
    pub state: i32,
    /// `Mss`, bytes: the current MSS.
    pub mss: u32,
    /// `ConnectionTimeMs`: the connection's age, ms.
    pub connection_time_ms: u64,
    /// `TimestampsEnabled`: TCP timestamps are in use.
    pub timestamps_enabled: bool,
    /// `RttUs`, µs: the current (smoothed) RTT estimate.
    pub rtt_us: u32,
    /// `MinRttUs`, µs: the smallest RTT sampled.
    pub min_rtt_us: u32,
    /// `BytesInFlight`: bytes sent and not yet acknowledged.
    pub bytes_in_flight: u32,
    /// `Cwnd`, bytes: congestion window.
    pub cwnd: u32,
    /// `SndWnd`, bytes: the window the peer advertised.
    pub snd_wnd: u32,
    /// `RcvWnd`, bytes: the window we advertise.
    pub rcv_wnd: u32,
    /// `RcvBuf`, bytes: the current receive buffer (moves with autotuning).
    pub rcv_buf: u32,
    /// `BytesOut`: bytes sent.
    pub bytes_out: u64,
    /// `BytesIn`: bytes received.
    pub bytes_in: u64,
    /// `BytesReordered`: bytes the **sender** side considered reordered (not received
    /// out-of-order data).
    pub bytes_reordered: u32,
    /// `BytesRetrans`: bytes retransmitted.
    pub bytes_retrans: u32,
    /// `FastRetrans`: Fast Retransmit invocations.
    pub fast_retrans: u32,
    /// `DupAcksIn`: duplicate ACKs received.
    pub dup_acks_in: u32,
    /// `TimeoutEpisodes`: retransmission-timeout episodes (each may span several
    /// timeouts).
    pub timeout_episodes: u32,
    /// `SynRetrans`: SYNs retransmitted (connection setup only).
    pub syn_retrans: u8,
    /// The `TCP_INFO_v1` extension (send-limit accounting).
    #[serde(flatten)]
    pub v1: Option<WindowsTcpInfoV1>,
    /// The `TCP_INFO_v2` extension.
    #[serde(flatten)]
    pub v2: Option<WindowsTcpInfoV2>,
}

/// The fields `TCP_INFO_v1` adds: why sending was limited, RFC 4898 style. Each state
/// counts transitions into it, milliseconds spent in it and bytes sent while in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WindowsTcpInfoV1 {
    /// `SndLimTransRwin`: transitions into "limited by the peer's receive window".
    pub snd_lim_trans_rwin: u32,
    /// `SndLimTimeRwin`, ms limited by the peer's receive window (a slow reader).
    pub snd_lim_time_rwin: u32,
    /// `SndLimBytesRwin`: bytes sent while receive-window limited.
    pub snd_lim_bytes_rwin: u64,
    /// `SndLimTransCwnd`: transitions into "congestion-window limited".
    pub snd_lim_trans_cwnd: u32,
    /// `SndLimTimeCwnd`, ms congestion-window limited (RTO time counts here).
    pub snd_lim_time_cwnd: u32,
    /// `SndLimBytesCwnd`: bytes sent while congestion-window limited.
    pub snd_lim_bytes_cwnd: u64,
    /// `SndLimTransSnd`: transitions into "sender (application) limited".
    pub snd_lim_trans_snd: u32,
    /// `SndLimTimeSnd`, ms the application had nothing to send.
    pub snd_lim_time_snd: u32,
    /// `SndLimBytesSnd`: bytes sent while sender limited.
    pub snd_lim_bytes_snd: u64,
}

/// The fields `TCP_INFO_v2` adds. Microsoft documents none of them; meanings are from the
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WindowsTcpInfoV2 {
    /// `OutOfOrderPktsIn`: out-of-order data packets received.
    pub out_of_order_pkts_in: u32,
    /// `EcnNegotiated`: ECN was negotiated.
    pub ecn_negotiated: bool,
    /// `EceAcksIn`: ACKs received with ECE set.
    pub ece_acks_in: u32,
    /// `PtoEpisodes`: probe-timeout episodes.
    pub pto_episodes: u32,
}

/// Maps `TCPSTATE` (`mstcpip.h`), which numbers the closing states differently from BSD.
pub fn state_from_windows(state: i32) -> TcpState {
    match state {
        0 => TcpState::Close,
        1 => TcpState::Listen,
        2 => TcpState::SynSent,
        3 => TcpState::SynRecv,
        4 => TcpState::Established,
        5 => TcpState::FinWait1,
        6 => TcpState::FinWait2,
        7 => TcpState::CloseWait,
        8 => TcpState::Closing,
        9 => TcpState::LastAck,
        10 => TcpState::TimeWait,
        n => TcpState::Unknown(u8::try_from(n).unwrap_or(u8::MAX)),
    }
}

impl WindowsTcpInfo {
    /// Decodes `buf`, the bytes `WSAIoctl(SIO_TCP_INFO)` returned for an input of
    /// `version`. The record is decoded as the newest version that both was asked for and
    /// fits in `buf` (a v2 request answered with 136 bytes decodes as v1).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than `TCP_INFO_v0` (88 bytes).
    ///
    /// ```
    /// use conniver::tcpinfo::windows::WindowsTcpInfo;
    /// let mut buf = [0u8; 88];
    /// buf[0..4].copy_from_slice(&4i32.to_ne_bytes()); // ESTABLISHED
    /// buf[20..24].copy_from_slice(&1500u32.to_ne_bytes()); // RttUs
    /// let raw = WindowsTcpInfo::decode(&buf, 0).unwrap();
    /// assert_eq!(raw.to_info().rtt, Some(std::time::Duration::from_micros(1500)));
    /// assert!(raw.v1.is_none());
    /// ```
    pub fn decode(buf: &[u8], version: u32) -> Result<Self> {
        if buf.len() < WINDOWS_V0_LEN {
            return Err(Error::Truncated {
                len: buf.len(),
                min: WINDOWS_V0_LEN,
            });
        }
        // Inside the v0 length every read succeeds; `unwrap_or_default` is never taken.
        let b = |off| u8_at(buf, off).unwrap_or_default();
        let w = |off| u32_at(buf, off).unwrap_or_default();
        let q = |off| u64_at(buf, off).unwrap_or_default();
        let v1 = if version >= 1 && buf.len() >= WINDOWS_V1_LEN {
            Some(WindowsTcpInfoV1 {
                snd_lim_trans_rwin: w(88),
                snd_lim_time_rwin: w(92),
                snd_lim_bytes_rwin: q(96),
                snd_lim_trans_cwnd: w(104),
                snd_lim_time_cwnd: w(108),
                snd_lim_bytes_cwnd: q(112),
                snd_lim_trans_snd: w(120),
                snd_lim_time_snd: w(124),
                snd_lim_bytes_snd: q(128),
            })
        } else {
            None
        };
        let v2 = if version >= 2 && buf.len() >= WINDOWS_V2_LEN {
            Some(WindowsTcpInfoV2 {
                out_of_order_pkts_in: w(136),
                ecn_negotiated: b(140) != 0,
                ece_acks_in: w(144),
                pto_episodes: w(148),
            })
        } else {
            None
        };
        Ok(WindowsTcpInfo {
            version: match (v1, v2) {
                (_, Some(_)) => 2,
                (Some(_), None) => 1,
                (None, None) => 0,
            },
            len: buf.len(),
            state: i32_at(buf, 0).unwrap_or_default(),
            mss: w(4),
            connection_time_ms: q(8),
            timestamps_enabled: b(16) != 0,
            rtt_us: w(20),
            min_rtt_us: w(24),
            bytes_in_flight: w(28),
            cwnd: w(32),
            snd_wnd: w(36),
            rcv_wnd: w(40),
            rcv_buf: w(44),
            bytes_out: q(48),
            bytes_in: q(56),
            bytes_reordered: w(64),
            bytes_retrans: w(68),
            fast_retrans: w(72),
            dup_acks_in: w(76),
            timeout_episodes: w(80),
            syn_retrans: b(84),
            v1,
            v2,
        })
    }

    /// The state, mapped from Windows numbering.
    pub fn tcp_state(&self) -> TcpState {
        state_from_windows(self.state)
    }

    /// The normalized view.
    ///
    /// - `rtt` is `RttUs` (the current estimate), `min_rtt` is `MinRttUs` (`None` while
    ///   it reads `u32::MAX`, i.e. no sample).
    /// - `cwnd_bytes` is `Cwnd`; `tx_window` is `SndWnd` (the peer's window, bytes);
    ///   `cwnd_segs` stays `None`: Windows reports no segment count.
    /// - Retransmission is reported only as `bytes_retrans` (`BytesRetrans`); Windows
    ///   has no retransmitted-segment counter, so `total_retrans` and `retransmits` stay
    ///   `None` (`SynRetrans`, `FastRetrans`, `TimeoutEpisodes` are in
    ///   [`sys`](Info::sys)).
    /// - `rwnd_limited` is v1's `SndLimTimeRwin` (ms).
    /// - `tx_options`/`rx_options` stay `None`: Windows tells only whether timestamps
    ///   (and, in v2, ECN) are on, not SACK or window scaling, and a partial option set
    ///   would read as "SACK off".
    pub fn to_info(&self) -> Info {
        let mut info = Info::empty(SysInfo::Windows(*self));
        info.state = Some(self.tcp_state());
        info.tx_mss = Some(self.mss);
        info.rtt = Some(Duration::from_micros(u64::from(self.rtt_us)));
        info.min_rtt = Some(self.min_rtt_us)
            .filter(|&v| v != u32::MAX)
            .map(|v| Duration::from_micros(u64::from(v)));
        info.connection_time = Some(Duration::from_millis(self.connection_time_ms));
        info.bytes_in_flight = Some(self.bytes_in_flight);
        info.cwnd_bytes = Some(u64::from(self.cwnd));
        info.tx_window = Some(self.snd_wnd);
        info.rx_window = Some(self.rcv_wnd);
        info.bytes_sent = Some(self.bytes_out);
        info.bytes_received = Some(self.bytes_in);
        info.bytes_retrans = Some(u64::from(self.bytes_retrans));
        info.rwnd_limited = self
            .v1
            .map(|v1| Duration::from_millis(u64::from(v1.snd_lim_time_rwin)));
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcpinfo::fixture::{C, CStruct, noise};

    /// `TCP_INFO_v0` / `_v1` / `_v2` from `mstcpip.h`, member by member, with offsets
    /// asserted against the reference table. Every value is distinct.
    fn header_layout(version: u32) -> Vec<u8> {
        let mut s = CStruct::new();
        assert_eq!(s.field(C::I32, 4), 0); // State: TCPSTATE_ESTABLISHED
        assert_eq!(s.field(C::U32, 1460), 4); // Mss
        assert_eq!(s.field(C::U64, 123_456), 8); // ConnectionTimeMs
        assert_eq!(s.field(C::U8, 1), 16); // TimestampsEnabled (BOOLEAN)
        assert_eq!(s.field(C::U32, 2_500), 20); // RttUs
        assert_eq!(s.field(C::U32, 900), 24); // MinRttUs
        assert_eq!(s.field(C::U32, 4_380), 28); // BytesInFlight
        assert_eq!(s.field(C::U32, 14_600), 32); // Cwnd
        assert_eq!(s.field(C::U32, 64_240), 36); // SndWnd
        assert_eq!(s.field(C::U32, 65_535), 40); // RcvWnd
        assert_eq!(s.field(C::U32, 131_072), 44); // RcvBuf
        assert_eq!(s.field(C::U64, (1 << 33) + 1), 48); // BytesOut
        assert_eq!(s.field(C::U64, 777_777), 56); // BytesIn
        assert_eq!(s.field(C::U32, 11), 64); // BytesReordered
        assert_eq!(s.field(C::U32, 2_920), 68); // BytesRetrans
        assert_eq!(s.field(C::U32, 3), 72); // FastRetrans
        assert_eq!(s.field(C::U32, 9), 76); // DupAcksIn
        assert_eq!(s.field(C::U32, 2), 80); // TimeoutEpisodes
        assert_eq!(s.field(C::U8, 5), 84); // SynRetrans
        if version >= 1 {
            assert_eq!(s.field(C::U32, 21), 88); // SndLimTransRwin
            assert_eq!(s.field(C::U32, 1_750), 92); // SndLimTimeRwin
            assert_eq!(s.field(C::U64, 23), 96); // SndLimBytesRwin
            assert_eq!(s.field(C::U32, 24), 104); // SndLimTransCwnd
            assert_eq!(s.field(C::U32, 25), 108); // SndLimTimeCwnd
            assert_eq!(s.field(C::U64, 26), 112); // SndLimBytesCwnd
            assert_eq!(s.field(C::U32, 27), 120); // SndLimTransSnd
            assert_eq!(s.field(C::U32, 28), 124); // SndLimTimeSnd
            assert_eq!(s.field(C::U64, 29), 128); // SndLimBytesSnd
        }
        if version >= 2 {
            assert_eq!(s.field(C::U32, 31), 136); // OutOfOrderPktsIn
            assert_eq!(s.field(C::U8, 1), 140); // EcnNegotiated (BOOLEAN)
            assert_eq!(s.field(C::U32, 33), 144); // EceAcksIn
            assert_eq!(s.field(C::U32, 34), 148); // PtoEpisodes
        }
        s.finish()
    }

    #[test]
    fn sizes_match_the_header() {
        for v in 0..=WINDOWS_MAX_VERSION {
            assert_eq!(Some(header_layout(v).len()), windows_len(v), "v{v}");
        }
        assert_eq!(windows_len(3), None);
    }

    fn assert_v0(raw: &WindowsTcpInfo) {
        assert_eq!(raw.state, 4);
        assert_eq!(raw.mss, 1460);
        assert_eq!(raw.connection_time_ms, 123_456);
        assert!(raw.timestamps_enabled);
        assert_eq!(raw.rtt_us, 2_500);
        assert_eq!(raw.min_rtt_us, 900);
        assert_eq!(raw.bytes_in_flight, 4_380);
        assert_eq!(raw.cwnd, 14_600);
        assert_eq!(raw.snd_wnd, 64_240);
        assert_eq!(raw.rcv_wnd, 65_535);
        assert_eq!(raw.rcv_buf, 131_072);
        assert_eq!(raw.bytes_out, (1 << 33) + 1);
        assert_eq!(raw.bytes_in, 777_777);
        assert_eq!(raw.bytes_reordered, 11);
        assert_eq!(raw.bytes_retrans, 2_920);
        assert_eq!(raw.fast_retrans, 3);
        assert_eq!(raw.dup_acks_in, 9);
        assert_eq!(raw.timeout_episodes, 2);
        assert_eq!(raw.syn_retrans, 5);
    }

    #[test]
    fn decodes_v0() {
        let raw = WindowsTcpInfo::decode(&header_layout(0), 0).unwrap();
        assert_eq!((raw.version, raw.len), (0, 88));
        assert_v0(&raw);
        assert_eq!(raw.v1, None);
        assert_eq!(raw.v2, None);

        let info = raw.to_info();
        assert_eq!(info.state, Some(TcpState::Established));
        assert_eq!(info.tx_mss, Some(1460));
        // RttUs, not MinRttUs (the seed's mistake).
        assert_eq!(info.rtt, Some(Duration::from_micros(2_500)));
        assert_eq!(info.min_rtt, Some(Duration::from_micros(900)));
        assert_eq!(info.connection_time, Some(Duration::from_millis(123_456)));
        assert_eq!(info.bytes_in_flight, Some(4_380));
        assert_eq!(info.cwnd_bytes, Some(14_600));
        // Not SndWnd (the seed's mistake): Windows has no segment count.
        assert_eq!(info.cwnd_segs, None);
        assert_eq!(info.tx_window, Some(64_240));
        assert_eq!(info.rx_window, Some(65_535));
        assert_eq!(info.bytes_sent, Some((1 << 33) + 1));
        assert_eq!(info.bytes_received, Some(777_777));
        assert_eq!(info.bytes_retrans, Some(2_920));
        // Not SynRetrans (the seed's mistake).
        assert_eq!(info.retransmits, None);
        assert_eq!(info.total_retrans, None);
        assert_eq!(info.rwnd_limited, None);
        assert_eq!(info.tx_options, None);
        assert_eq!(info.rto, None);
        assert!(matches!(info.sys(), SysInfo::Windows(r) if *r == raw));
    }

    #[test]
    fn decodes_v1() {
        let raw = WindowsTcpInfo::decode(&header_layout(1), 1).unwrap();
        assert_eq!((raw.version, raw.len), (1, 136));
        assert_v0(&raw);
        let v1 = raw.v1.unwrap();
        assert_eq!(
            (
                v1.snd_lim_trans_rwin,
                v1.snd_lim_time_rwin,
                v1.snd_lim_bytes_rwin
            ),
            (21, 1_750, 23)
        );
        assert_eq!(
            (
                v1.snd_lim_trans_cwnd,
                v1.snd_lim_time_cwnd,
                v1.snd_lim_bytes_cwnd
            ),
            (24, 25, 26)
        );
        assert_eq!(
            (
                v1.snd_lim_trans_snd,
                v1.snd_lim_time_snd,
                v1.snd_lim_bytes_snd
            ),
            (27, 28, 29)
        );
        assert_eq!(raw.v2, None);
        assert_eq!(
            raw.to_info().rwnd_limited,
            Some(Duration::from_millis(1_750))
        );
    }

    #[test]
    fn decodes_v2() {
        let raw = WindowsTcpInfo::decode(&header_layout(2), 2).unwrap();
        assert_eq!((raw.version, raw.len), (2, 152));
        assert_v0(&raw);
        assert_eq!(raw.v1.unwrap().snd_lim_bytes_snd, 29);
        let v2 = raw.v2.unwrap();
        assert_eq!(v2.out_of_order_pkts_in, 31);
        assert!(v2.ecn_negotiated);
        assert_eq!(v2.ece_acks_in, 33);
        assert_eq!(v2.pto_episodes, 34);

        let json = serde_json::to_value(raw).unwrap();
        assert_eq!(json["version"], 2);
        assert_eq!(json["rttUs"], 2_500);
        assert_eq!(json["connectionTimeMs"], 123_456);
        assert_eq!(json["sndLimTimeRwin"], 1_750);
        assert_eq!(json["outOfOrderPktsIn"], 31);
        assert_eq!(json["ecnNegotiated"], true);
    }

    #[test]
    fn version_is_bounded_by_request_and_length() {
        // Asked for v2, got a v1-sized answer: decoded as v1.
        let raw = WindowsTcpInfo::decode(&header_layout(1), 2).unwrap();
        assert_eq!(raw.version, 1);
        assert!(raw.v1.is_some() && raw.v2.is_none());
        // Asked for v0 into a bigger buffer: the v1 bytes are not v1 data.
        let raw = WindowsTcpInfo::decode(&header_layout(2), 0).unwrap();
        assert_eq!(raw.version, 0);
        assert!(raw.v1.is_none());
        let json = serde_json::to_value(raw).unwrap();
        assert!(json.get("sndLimTimeRwin").is_none());
        assert!(json.get("outOfOrderPktsIn").is_none());
    }

    #[test]
    fn min_rtt_without_a_sample_is_none() {
        let mut buf = header_layout(0);
        buf[24..28].copy_from_slice(&u32::MAX.to_ne_bytes());
        let info = WindowsTcpInfo::decode(&buf, 0).unwrap().to_info();
        assert_eq!(info.min_rtt, None);
    }

    #[test]
    fn states_use_windows_numbering() {
        let cases = [
            (0, TcpState::Close),
            (1, TcpState::Listen),
            (2, TcpState::SynSent),
            (3, TcpState::SynRecv),
            (4, TcpState::Established),
            (5, TcpState::FinWait1),
            (6, TcpState::FinWait2),
            (7, TcpState::CloseWait),
            (8, TcpState::Closing),
            (9, TcpState::LastAck),
            (10, TcpState::TimeWait),
            (11, TcpState::Unknown(11)),
            (-1, TcpState::Unknown(255)),
        ];
        for (n, state) in cases {
            assert_eq!(state_from_windows(n), state, "{n}");
        }
    }

    #[test]
    fn boolean_bytes_other_than_one_are_true() {
        let mut buf = header_layout(2);
        buf[16] = 0x80;
        buf[140] = 0;
        let raw = WindowsTcpInfo::decode(&buf, 2).unwrap();
        assert!(raw.timestamps_enabled);
        assert!(!raw.v2.unwrap().ecn_negotiated);
    }

    #[test]
    fn arbitrary_bytes_of_any_length_never_panic() {
        for len in 0..512 {
            for version in 0..5 {
                let buf = noise(len as u64 * 7 + u64::from(version), len);
                match WindowsTcpInfo::decode(&buf, version) {
                    Ok(raw) => {
                        assert!(len >= WINDOWS_V0_LEN);
                        assert!(raw.version <= version.min(WINDOWS_MAX_VERSION));
                        assert!(windows_len(raw.version).is_some_and(|l| l <= len));
                        serde_json::to_string(&raw.to_info()).unwrap();
                    }
                    Err(e) => {
                        assert!(len < WINDOWS_V0_LEN);
                        assert!(matches!(e, Error::Truncated { min: 88, .. }));
                    }
                }
            }
        }
    }
}
