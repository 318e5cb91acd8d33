//! The normalized, cross-platform view of a TCP connection.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::darwin::DarwinTcpConnectionInfo;
use super::freebsd::FreeBsdTcpInfo;
use super::linux::{CcInfo, CongestionControl, LinuxTcpInfoBytes, MemInfo};
use super::windows::WindowsTcpInfo;

/// A TCP connection state, named as the seed library names them in JSON.
///
/// Each platform numbers states its own way; decoders map them here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TcpState {
    /// Connection open, data flowing.
    Established,
    /// SYN sent, waiting for SYN-ACK.
    SynSent,
    /// SYN received, SYN-ACK sent.
    SynRecv,
    /// We closed, FIN sent.
    FinWait1,
    /// Our FIN acked, waiting for the peer's.
    FinWait2,
    /// Both closed, waiting out 2·MSL.
    TimeWait,
    /// Closed.
    Close,
    /// The peer closed, we have not.
    CloseWait,
    /// Waiting for the ack of our FIN after the peer's.
    LastAck,
    /// A listening socket.
    Listen,
    /// Both sides closed at once.
    Closing,
    /// Linux request socket (SYN received, not yet a full socket).
    NewSynRecv,
    /// Linux 6.7+: bound, inactive.
    BoundInactive,
    /// A number the decoder does not know.
    Unknown(u8),
}

impl TcpState {
    /// Maps Linux's numbering (`include/net/tcp_states.h`).
    pub fn from_linux(n: u8) -> Self {
        match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            13 => TcpState::BoundInactive,
            n => TcpState::Unknown(n),
        }
    }

    /// Maps BSD numbering (`tcp_fsm.h`: macOS and FreeBSD).
    pub fn from_bsd(n: u8) -> Self {
        match n {
            0 => TcpState::Close,
            1 => TcpState::Listen,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::Established,
            5 => TcpState::CloseWait,
            6 => TcpState::FinWait1,
            7 => TcpState::Closing,
            8 => TcpState::LastAck,
            9 => TcpState::FinWait2,
            10 => TcpState::TimeWait,
            n => TcpState::Unknown(n),
        }
    }

    /// The name used in JSON and logs (`"ESTABLISHED"`, `"LISTEN"`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
            TcpState::BoundInactive => "BOUND_INACTIVE",
            TcpState::Unknown(_) => "UNKNOWN",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// TCP options in use on one direction of a connection.
///
/// Serialized as the seed's array of strings: `["Timestamps", "SACK", "WindowScale:08"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub struct TcpOptions {
    /// TCP timestamps (RFC 7323).
    pub timestamps: bool,
    /// Selective acknowledgements.
    pub sack: bool,
    /// Window scaling, with its shift count.
    pub window_scale: Option<u8>,
    /// Explicit congestion notification.
    pub ecn: bool,
    /// ECT-marked packets seen (Linux `TCPI_OPT_ECN_SEEN`).
    pub ecn_seen: bool,
    /// Data in SYN acknowledged (TCP Fast Open).
    pub syn_data: bool,
}

impl TcpOptions {
    /// The option names in the seed's format, at most 6, without allocating.
    pub fn names(&self) -> impl Iterator<Item = OptionName> + '_ {
        [
            self.timestamps.then_some(OptionName::Timestamps),
            self.sack.then_some(OptionName::Sack),
            self.window_scale.map(OptionName::WindowScale),
            self.ecn.then_some(OptionName::Ecn),
            self.ecn_seen.then_some(OptionName::EcnSeen),
            self.syn_data.then_some(OptionName::SynData),
        ]
        .into_iter()
        .flatten()
    }
}

/// One element of [`TcpOptions::names`]; `Display` gives the seed's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionName {
    /// `"Timestamps"`.
    Timestamps,
    /// `"SACK"`.
    Sack,
    /// `"WindowScale:NN"` (shift in two hex digits, as the seed prints it).
    WindowScale(u8),
    /// `"ECN"`.
    Ecn,
    /// `"ECNSeen"`.
    EcnSeen,
    /// `"SYNData"`.
    SynData,
}

impl fmt::Display for OptionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionName::Timestamps => f.write_str("Timestamps"),
            OptionName::Sack => f.write_str("SACK"),
            OptionName::WindowScale(s) => write!(f, "WindowScale:{s:02x}"),
            OptionName::Ecn => f.write_str("ECN"),
            OptionName::EcnSeen => f.write_str("ECNSeen"),
            OptionName::SynData => f.write_str("SYNData"),
        }
    }
}

impl Serialize for TcpOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names().map(DisplayStr))
    }
}

/// Serializes anything `Display` as a string without an intermediate `String`.
struct DisplayStr<T>(T);

impl<T: fmt::Display> Serialize for DisplayStr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The raw platform record behind an [`Info`] (JSON `sysInfo`).
// `Info` is `Copy` and allocation-free by design, and a process only ever builds its own
// platform's variant, so the size gap between variants costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum SysInfo {
    /// Linux `struct tcp_info`, as the returned bytes;
    /// [`decode`](LinuxTcpInfoBytes::decode) gives its fields.
    Linux(LinuxTcpInfoBytes),
    /// macOS / iOS `struct tcp_connection_info`.
    Darwin(DarwinTcpConnectionInfo),
    /// Windows `TCP_INFO_v0`/`v1`/`v2`.
    Windows(WindowsTcpInfo),
    /// FreeBSD `struct tcp_info`.
    FreeBsd(FreeBsdTcpInfo),
}

/// A snapshot of one TCP socket's kernel state, normalized across platforms.
///
/// Every field is `Option`: `None` means the platform or kernel does not provide it
/// (never a fake `0`; a real `0` is `Some(0)`). Durations are `Duration` (nanoseconds in
/// JSON, as the seed's Go `time.Duration`), sizes are bytes, counts are segments unless
/// the name says otherwise. [`sys`](Info::sys) keeps the raw platform record.
///
/// JSON keys are the seed library's (`state`, `txOptions`, `txMSS`, `rtt`…); fields the
/// seed lacks use the same camelCase style.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Info {
    /// Connection state. Linux `tcpi_state`, macOS/FreeBSD `tcpi_state`, Windows `State`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<TcpState>,
    /// Options on our sending side, with our window-scale shift (Linux `tcpi_snd_wscale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_options: Option<TcpOptions>,
    /// Options on the receiving side, with the receive window-scale shift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_options: Option<TcpOptions>,
    /// Send MSS, bytes (Linux `tcpi_snd_mss`).
    #[serde(rename = "txMSS", skip_serializing_if = "Option::is_none")]
    pub tx_mss: Option<u32>,
    /// Receive MSS, bytes (Linux `tcpi_rcv_mss`).
    #[serde(rename = "rxMSS", skip_serializing_if = "Option::is_none")]
    pub rx_mss: Option<u32>,
    /// Smoothed round-trip time (Linux `tcpi_rtt`, µs resolution).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Duration>,
    /// Round-trip time variation (Linux `tcpi_rttvar`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub rtt_var: Option<Duration>,
    /// Smallest RTT seen on the connection (Linux 4.6+ `tcpi_min_rtt`; `None` before the
    /// first sample).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub min_rtt: Option<Duration>,
    /// Retransmission timeout (Linux `tcpi_rto`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub rto: Option<Duration>,
    /// Delayed-ACK timeout (Linux `tcpi_ato`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub ato: Option<Duration>,
    /// Time since we last sent data (Linux `tcpi_last_data_sent`, ms resolution).
    #[serde(
        rename = "lastTxAt",
        with = "ns",
        skip_serializing_if = "Option::is_none"
    )]
    pub since_last_tx: Option<Duration>,
    /// Time since we last received data (Linux `tcpi_last_data_recv`, ms resolution).
    #[serde(
        rename = "lastRxAt",
        with = "ns",
        skip_serializing_if = "Option::is_none"
    )]
    pub since_last_rx: Option<Duration>,
    /// Time since we last received an ACK (Linux `tcpi_last_ack_recv`, ms resolution).
    #[serde(
        rename = "lastRxAckAt",
        with = "ns",
        skip_serializing_if = "Option::is_none"
    )]
    pub since_last_rx_ack: Option<Duration>,
    /// The receive window we advertise to the peer, bytes (Linux 6.2+ `tcpi_rcv_wnd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_window: Option<u32>,
    /// The send window the peer advertised to us, bytes (Linux 5.4+ `tcpi_snd_wnd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_window: Option<u32>,
    /// Sender slow-start threshold in the platform's unit, as in the seed: **segments**
    /// on Linux, bytes on macOS and FreeBSD. `None` while unset (Linux `0x7fffffff`).
    #[serde(rename = "txSSThreshold", skip_serializing_if = "Option::is_none")]
    pub tx_ssthresh: Option<u32>,
    /// Receiver slow-start threshold, bytes (Linux `tcpi_rcv_ssthresh`).
    #[serde(rename = "rxSSThreshold", skip_serializing_if = "Option::is_none")]
    pub rx_ssthresh: Option<u32>,
    /// Congestion window, bytes (Linux: `tcpi_snd_cwnd × tcpi_snd_mss`).
    #[serde(rename = "txCWindowBytes", skip_serializing_if = "Option::is_none")]
    pub cwnd_bytes: Option<u64>,
    /// Congestion window, segments (Linux `tcpi_snd_cwnd`).
    #[serde(rename = "txCWindowSegs", skip_serializing_if = "Option::is_none")]
    pub cwnd_segs: Option<u32>,
    /// Consecutive RTO retransmissions of the head segment right now (Linux
    /// `tcpi_retransmits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u8>,
    /// Segments retransmitted over the connection's life (Linux `tcpi_total_retrans`,
    /// macOS `tcpi_txretransmitpackets`, FreeBSD `tcpi_snd_rexmitpack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_retrans: Option<u32>,
    /// Segments sent and not yet acknowledged (Linux `tcpi_unacked`; `None` on listeners).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unacked: Option<u32>,
    /// Segments considered lost (Linux `tcpi_lost`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u32>,
    /// Bytes sent, retransmissions included (Linux 4.19+ `tcpi_bytes_sent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Bytes acknowledged by the peer (Linux 4.1+ `tcpi_bytes_acked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// Bytes received (Linux 4.1+ `tcpi_bytes_received`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// Bytes retransmitted (Linux 4.19+ `tcpi_bytes_retrans`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    /// Bytes sent and not yet acknowledged (Windows `BytesInFlight`; FreeBSD 13.3+
    /// `tcpi_snd_max − tcpi_snd_una`). Linux counts segments instead: see `unacked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in_flight: Option<u32>,
    /// How long the connection has existed (Windows `ConnectionTimeMs`, ms resolution).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub connection_time: Option<Duration>,
    /// Segments sent (Linux 4.2+ `tcpi_segs_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// Segments received (Linux 4.2+ `tcpi_segs_in`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    /// Data-carrying segments sent (Linux 4.6+ `tcpi_data_segs_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_out: Option<u32>,
    /// Data-carrying segments received (Linux 4.6+ `tcpi_data_segs_in`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_in: Option<u32>,
    /// Recent delivery rate, bytes/s (Linux 4.9+ `tcpi_delivery_rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate: Option<u64>,
    /// Whether that delivery-rate sample was limited by the application (Linux 4.9+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate_app_limited: Option<bool>,
    /// Pacing rate, bytes/s; `u64::MAX` means unlimited (Linux 3.15+ `tcpi_pacing_rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_rate: Option<u64>,
    /// Time spent sending data (Linux 4.10+ `tcpi_busy_time`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub busy_time: Option<Duration>,
    /// Time sending was limited by the peer's receive window — a slow reader (Linux 4.10+
    /// `tcpi_rwnd_limited`; Windows v1 `SndLimTimeRwin`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub rwnd_limited: Option<Duration>,
    /// Time sending was limited by our send buffer (Linux 4.10+ `tcpi_sndbuf_limited`).
    #[serde(with = "ns", skip_serializing_if = "Option::is_none")]
    pub sndbuf_limited: Option<Duration>,
    /// Bytes written by the application but not yet sent (Linux 4.6+ `tcpi_notsent_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notsent_bytes: Option<u32>,
    /// Reordering degree, segments (Linux `tcpi_reordering`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reordering: Option<u32>,
    /// Path MTU, bytes (Linux `tcpi_pmtu`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pmtu: Option<u32>,
    /// On a listening socket: connections waiting in the accept queue (Linux
    /// `tcpi_unacked` of a LISTEN socket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_queue: Option<u32>,
    /// On a listening socket: the accept-queue limit (Linux `tcpi_sacked` of a LISTEN
    /// socket, i.e. the `listen()` backlog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_backlog: Option<u32>,
    /// Congestion-control algorithm (`TCP_CONGESTION`); only when asked for with
    /// [`SnapshotOptions`](crate::SnapshotOptions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion_control: Option<CongestionControl>,
    /// Algorithm state (`TCP_CC_INFO`: BBR bandwidth, …); only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc_info: Option<CcInfo>,
    /// Socket memory (`SO_MEMINFO`); only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_info: Option<MemInfo>,
    /// The raw platform record.
    pub sys_info: SysInfo,
}

impl Info {
    /// An `Info` with every normalized field `None` around a raw record; decoders fill in
    /// what their platform provides.
    #[inline]
    pub(crate) fn empty(sys_info: SysInfo) -> Self {
        Info {
            state: None,
            tx_options: None,
            rx_options: None,
            tx_mss: None,
            rx_mss: None,
            rtt: None,
            rtt_var: None,
            min_rtt: None,
            rto: None,
            ato: None,
            since_last_tx: None,
            since_last_rx: None,
            since_last_rx_ack: None,
            rx_window: None,
            tx_window: None,
            tx_ssthresh: None,
            rx_ssthresh: None,
            cwnd_bytes: None,
            cwnd_segs: None,
            retransmits: None,
            total_retrans: None,
            unacked: None,
            lost: None,
            bytes_sent: None,
            bytes_acked: None,
            bytes_received: None,
            bytes_retrans: None,
            bytes_in_flight: None,
            connection_time: None,
            segs_out: None,
            segs_in: None,
            data_segs_out: None,
            data_segs_in: None,
            delivery_rate: None,
            delivery_rate_app_limited: None,
            pacing_rate: None,
            busy_time: None,
            rwnd_limited: None,
            sndbuf_limited: None,
            notsent_bytes: None,
            reordering: None,
            pmtu: None,
            accept_queue: None,
            accept_backlog: None,
            congestion_control: None,
            cc_info: None,
            mem_info: None,
            sys_info,
        }
    }

    /// The raw platform record (JSON `sysInfo`).
    pub fn sys(&self) -> &SysInfo {
        &self.sys_info
    }
}

/// `Option<Duration>` as integer nanoseconds (Go `time.Duration` in the seed's JSON).
mod ns {
    use std::time::Duration;

    use serde::Serializer;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            // u64 nanoseconds cover 584 years; saturate rather than wrap beyond.
            Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }
}
