//! Linux `struct tcp_info` (and its companion options), decoded from raw bytes.
//!
//! Pure functions, compiled on every target so that kernel layouts of every vintage are
//! tested everywhere. A field is `Some` iff its last byte lies inside the length the
//! kernel returned; only the bitfields of byte 7 and the last four bytes (redeclared in
//! 7.0) also depend on the kernel release.

use serde::Serialize;

use super::bytes::{u8_at, u16_at, u32_at, u64_at};
use crate::error::{Error, Result};

/// Bytes of `struct tcp_info` in the oldest layout conniver accepts (Linux 2.6.0: every
/// field through `tcpi_reordering`).
pub const LINUX_MIN_LEN: usize = 92;
/// Bytes of `struct tcp_info` in Linux 6.18 (the newest layout this crate knows).
pub const LINUX_MAX_LEN: usize = 280;

/// Where the last field [`Info`](crate::Info) reads ends (`tcpi_rcv_wnd`, 6.2+).
const NORMALIZED_END: usize = 236;

/// `tcpi_snd_ssthresh` value meaning "no threshold yet" (`TCP_INFINITE_SSTHRESH`).
pub const LINUX_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

/// A Linux kernel release, as far as the decoder cares (`major.minor.patch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelRelease {
    /// Major version (the `6` of `6.18.2`).
    pub major: u16,
    /// Minor version (the `18` of `6.18.2`).
    pub minor: u16,
    /// Patch level (the `2` of `6.18.2`), `0` when absent.
    pub patch: u16,
}

impl KernelRelease {
    /// A release from its numbers.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        KernelRelease {
            major,
            minor,
            patch,
        }
    }

    /// Parses a `uname -r` string such as `6.18.0-1-amd64` or `5.15.167.4-microsoft-standard`.
    ///
    /// Returns `None` when the string does not start with `MAJOR.MINOR`.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        // The patch level is optional: "6.18-rc1" has none.
        let rest = release.split('.').nth(2).unwrap_or("");
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let patch = rest.get(..digits).and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(KernelRelease::new(major, minor, patch))
    }
}

/// The raw Linux `struct tcp_info`, field by field, in kernel units.
///
/// Names are the kernel's without the `tcpi_` prefix (camelCase in JSON). Fields of the
/// 2.6.0 layout are plain values; every later field is `Option` and is `Some` only when
/// the running kernel returned it. Times are in the kernel's units (µs unless the field
/// says ms) — [`Info`](crate::Info) converts them to `Duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LinuxTcpInfo {
    /// Bytes the kernel returned.
    pub len: usize,
    /// `tcpi_state`: TCP state, Linux numbering (1 ESTABLISHED … 10 LISTEN).
    pub state: u8,
    /// `tcpi_ca_state`: 0 Open, 1 Disorder, 2 CWR, 3 Recovery, 4 Loss.
    pub ca_state: u8,
    /// `tcpi_retransmits`: consecutive RTO retransmits of the head segment.
    pub retransmits: u8,
    /// `tcpi_probes`: zero-window or keepalive probes outstanding.
    pub probes: u8,
    /// `tcpi_backoff`: exponential RTO backoff.
    pub backoff: u8,
    /// `tcpi_options`: bit flags (`TCPI_OPT_*`).
    pub options: u8,
    /// `tcpi_snd_wscale`: window scale the peer applies to windows we receive… as the
    /// kernel names it: our send-side shift.
    pub snd_wscale: u8,
    /// `tcpi_rcv_wscale`: receive-side window scale shift.
    pub rcv_wscale: u8,
    /// `tcpi_delivery_rate_app_limited` (4.9+): the last delivery-rate sample was
    /// limited by the application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate_app_limited: Option<bool>,
    /// `tcpi_fastopen_client_fail` (5.5+): why a TFO client attempt failed (0–3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fastopen_client_fail: Option<u8>,
    /// `tcpi_rto`, µs.
    pub rto: u32,
    /// `tcpi_ato`, µs.
    pub ato: u32,
    /// `tcpi_snd_mss`, bytes.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`, bytes.
    pub rcv_mss: u32,
    /// `tcpi_unacked`, segments (accept-queue length on a listener).
    pub unacked: u32,
    /// `tcpi_sacked`, segments (backlog limit on a listener).
    pub sacked: u32,
    /// `tcpi_lost`, segments.
    pub lost: u32,
    /// `tcpi_retrans`, segments currently retransmitted.
    pub retrans: u32,
    /// `tcpi_fackets` (always 0 since 4.15).
    pub fackets: u32,
    /// `tcpi_last_data_sent`, **ms** ago.
    pub last_data_sent: u32,
    /// `tcpi_last_ack_sent` (not maintained by the kernel: always 0).
    pub last_ack_sent: u32,
    /// `tcpi_last_data_recv`, ms ago.
    pub last_data_recv: u32,
    /// `tcpi_last_ack_recv`, ms ago.
    pub last_ack_recv: u32,
    /// `tcpi_pmtu`, bytes.
    pub pmtu: u32,
    /// `tcpi_rcv_ssthresh`, bytes.
    pub rcv_ssthresh: u32,
    /// `tcpi_rtt`, µs (smoothed).
    pub rtt: u32,
    /// `tcpi_rttvar`, µs.
    pub rttvar: u32,
    /// `tcpi_snd_ssthresh`, segments (`0x7fffffff` = not set).
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`, segments.
    pub snd_cwnd: u32,
    /// `tcpi_advmss`, bytes.
    pub advmss: u32,
    /// `tcpi_reordering`, segments.
    pub reordering: u32,
    /// `tcpi_rcv_rtt` (2.6.2+), µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_rtt: Option<u32>,
    /// `tcpi_rcv_space` (2.6.2+), bytes (receive-buffer autotuning, not a window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_space: Option<u32>,
    /// `tcpi_total_retrans` (2.6.2+), segments over the connection's life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_retrans: Option<u32>,
    /// `tcpi_pacing_rate` (3.15+), bytes/s (`u64::MAX` = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing_rate: Option<u64>,
    /// `tcpi_max_pacing_rate` (3.15+), bytes/s (`u64::MAX` = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pacing_rate: Option<u64>,
    /// `tcpi_bytes_acked` (4.1+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// `tcpi_bytes_received` (4.1+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// `tcpi_segs_out` (4.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_out: Option<u32>,
    /// `tcpi_segs_in` (4.2+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segs_in: Option<u32>,
    /// `tcpi_notsent_bytes` (4.6+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notsent_bytes: Option<u32>,
    /// `tcpi_min_rtt` (4.6+), µs (`0xffffffff` = no sample yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_rtt: Option<u32>,
    /// `tcpi_data_segs_in` (4.6+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_in: Option<u32>,
    /// `tcpi_data_segs_out` (4.6+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_segs_out: Option<u32>,
    /// `tcpi_delivery_rate` (4.9+), bytes/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_rate: Option<u64>,
    /// `tcpi_busy_time` (4.10+), µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_time: Option<u64>,
    /// `tcpi_rwnd_limited` (4.10+), µs limited by the peer's receive window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rwnd_limited: Option<u64>,
    /// `tcpi_sndbuf_limited` (4.10+), µs limited by the send buffer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sndbuf_limited: Option<u64>,
    /// `tcpi_delivered` (4.18+), segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u32>,
    /// `tcpi_delivered_ce` (4.18+), segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ce: Option<u32>,
    /// `tcpi_bytes_sent` (4.19+), bytes including retransmits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// `tcpi_bytes_retrans` (4.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    /// `tcpi_dsack_dups` (4.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dsack_dups: Option<u32>,
    /// `tcpi_reord_seen` (4.19+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reord_seen: Option<u32>,
    /// `tcpi_rcv_ooopack` (5.4+), out-of-order packets received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_ooopack: Option<u32>,
    /// `tcpi_snd_wnd` (5.4+), bytes: the peer's advertised window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snd_wnd: Option<u32>,
    /// `tcpi_rcv_wnd` (6.2+), bytes: the window we advertise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcv_wnd: Option<u32>,
    /// `tcpi_rehash` (6.2+): PLB or RTO rehashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehash: Option<u32>,
    /// `tcpi_total_rto` (6.7+): RTO timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto: Option<u16>,
    /// `tcpi_total_rto_recoveries` (6.7+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_recoveries: Option<u16>,
    /// `tcpi_total_rto_time` (6.7+), ms spent in RTO recovery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rto_time: Option<u32>,
    /// `tcpi_received_ce` (6.18+), packets (AccECN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_ce: Option<u32>,
    /// `tcpi_delivered_e1_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_e1_bytes: Option<u32>,
    /// `tcpi_delivered_e0_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_e0_bytes: Option<u32>,
    /// `tcpi_delivered_ce_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ce_bytes: Option<u32>,
    /// `tcpi_received_e1_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_e1_bytes: Option<u32>,
    /// `tcpi_received_e0_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_e0_bytes: Option<u32>,
    /// `tcpi_received_ce_bytes` (6.18+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_ce_bytes: Option<u32>,
    /// `tcpi_accecn_fail_mode` (6.18: a u16; 7.0+: a 4-bit field). Bits: 0 ACE fail send,
    /// 1 ACE fail recv, 2 option fail send, 3 option fail recv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accecn_fail_mode: Option<u16>,
    /// `tcpi_accecn_opt_seen` (6.18: a u16; 7.0+: a 2-bit field): 0 not seen, 1 empty
    /// seen, 2 counter seen, 3 fail seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accecn_opt_seen: Option<u16>,
    /// `tcpi_ecn_mode` (7.0+): 0 disabled, 1 RFC 3168, 2 AccECN, 3 pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecn_mode: Option<u8>,
    /// `tcpi_options2` (7.0+): 24 bits of further option flags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options2: Option<u32>,
}

/// `TCPI_OPT_*` flags of `tcpi_options`.
pub mod opt {
    /// TCP timestamps negotiated.
    pub const TIMESTAMPS: u8 = 1;
    /// SACK negotiated.
    pub const SACK: u8 = 2;
    /// Window scaling negotiated.
    pub const WSCALE: u8 = 4;
    /// ECN negotiated.
    pub const ECN: u8 = 8;
    /// At least one ECT packet was received.
    pub const ECN_SEEN: u8 = 16;
    /// SYN-ACK acked data in SYN sent or received (TFO).
    pub const SYN_DATA: u8 = 32;
    /// Microsecond timestamps in use (6.7+).
    pub const USEC_TS: u8 = 64;
    /// Child socket of a TFO listener (6.16+).
    pub const TFO_CHILD: u8 = 128;
}

// Bit positions inside byte 6, byte 7 and the 7.0 u32 at 276: C bitfields are allocated
// from the least significant bit on little-endian targets and from the most significant
// bit on big-endian ones.
#[cfg(target_endian = "little")]
mod bits {
    pub(super) fn wscale(b: u8) -> (u8, u8) {
        (b & 0x0f, b >> 4)
    }
    pub(super) fn app_limited(b: u8) -> bool {
        b & 1 != 0
    }
    pub(super) fn fastopen_client_fail(b: u8) -> u8 {
        (b >> 1) & 3
    }
    /// (ecn_mode, accecn_opt_seen, accecn_fail_mode, options2)
    pub(super) fn ecn_word(w: u32) -> (u8, u16, u16, u32) {
        (
            (w & 3) as u8,
            ((w >> 2) & 3) as u16,
            ((w >> 4) & 0xf) as u16,
            w >> 8,
        )
    }
}

#[cfg(target_endian = "big")]
mod bits {
    pub(super) fn wscale(b: u8) -> (u8, u8) {
        (b >> 4, b & 0x0f)
    }
    pub(super) fn app_limited(b: u8) -> bool {
        b & 0x80 != 0
    }
    pub(super) fn fastopen_client_fail(b: u8) -> u8 {
        (b >> 5) & 3
    }
    pub(super) fn ecn_word(w: u32) -> (u8, u16, u16, u32) {
        (
            (w >> 30) as u8,
            ((w >> 28) & 3) as u16,
            ((w >> 24) & 0xf) as u16,
            w & 0x00ff_ffff,
        )
    }
}

impl LinuxTcpInfo {
    /// Decodes `buf`, the bytes `getsockopt(TCP_INFO)` returned (exactly the returned
    /// length, not the whole buffer), from a kernel of `release` (`None` when unknown:
    /// the release-gated bitfields are then left `None`).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`LINUX_MIN_LEN`].
    ///
    /// ```
    /// use conniver::tcpinfo::linux::{KernelRelease, LinuxTcpInfo};
    /// let mut buf = [0u8; 160]; // what a 4.6 kernel returns
    /// buf[0] = 1; // ESTABLISHED
    /// buf[68..72].copy_from_slice(&1500u32.to_ne_bytes()); // rtt 1.5 ms
    /// let info = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(4, 6, 0))).unwrap();
    /// assert_eq!(info.rtt, 1500);
    /// assert!(info.min_rtt.is_some());       // 4.6 field, inside 160 bytes
    /// assert!(info.delivery_rate.is_none()); // 4.9 field, not returned
    /// ```
    #[inline]
    pub fn decode(buf: &[u8], release: Option<KernelRelease>) -> Result<Self> {
        if buf.len() < LINUX_MIN_LEN {
            return Err(Error::Truncated {
                len: buf.len(),
                min: LINUX_MIN_LEN,
            });
        }
        Ok(Self::decode_checked_len(buf, release))
    }

    /// [`decode`](Self::decode) once the caller has checked `buf.len() >= LINUX_MIN_LEN`
    /// (a shorter `buf` reads zeros, never panics). Always inlined so that a caller using
    /// only a few fields gets only their reads.
    #[inline(always)]
    fn decode_checked_len(buf: &[u8], release: Option<KernelRelease>) -> Self {
        // Inside the minimum length every read succeeds; `unwrap_or_default` is never taken.
        let b = |off| u8_at(buf, off).unwrap_or_default();
        let w = |off| u32_at(buf, off).unwrap_or_default();
        let at_least =
            |major, minor| release.is_some_and(|r| r >= KernelRelease::new(major, minor, 0));
        let (snd_wscale, rcv_wscale) = bits::wscale(b(6));
        let byte7 = b(7);

        let mut info = LinuxTcpInfo {
            len: buf.len(),
            state: b(0),
            ca_state: b(1),
            retransmits: b(2),
            probes: b(3),
            backoff: b(4),
            options: b(5),
            snd_wscale,
            rcv_wscale,
            delivery_rate_app_limited: at_least(4, 9).then(|| bits::app_limited(byte7)),
            fastopen_client_fail: at_least(5, 5).then(|| bits::fastopen_client_fail(byte7)),
            rto: w(8),
            ato: w(12),
            snd_mss: w(16),
            rcv_mss: w(20),
            unacked: w(24),
            sacked: w(28),
            lost: w(32),
            retrans: w(36),
            fackets: w(40),
            last_data_sent: w(44),
            last_ack_sent: w(48),
            last_data_recv: w(52),
            last_ack_recv: w(56),
            pmtu: w(60),
            rcv_ssthresh: w(64),
            rtt: w(68),
            rttvar: w(72),
            snd_ssthresh: w(76),
            snd_cwnd: w(80),
            advmss: w(84),
            reordering: w(88),
            rcv_rtt: u32_at(buf, 92),
            rcv_space: u32_at(buf, 96),
            total_retrans: u32_at(buf, 100),
            pacing_rate: u64_at(buf, 104),
            max_pacing_rate: u64_at(buf, 112),
            bytes_acked: u64_at(buf, 120),
            bytes_received: u64_at(buf, 128),
            segs_out: u32_at(buf, 136),
            segs_in: u32_at(buf, 140),
            notsent_bytes: u32_at(buf, 144),
            min_rtt: u32_at(buf, 148),
            data_segs_in: u32_at(buf, 152),
            data_segs_out: u32_at(buf, 156),
            delivery_rate: u64_at(buf, 160),
            busy_time: u64_at(buf, 168),
            rwnd_limited: u64_at(buf, 176),
            sndbuf_limited: u64_at(buf, 184),
            delivered: u32_at(buf, 192),
            delivered_ce: u32_at(buf, 196),
            bytes_sent: u64_at(buf, 200),
            bytes_retrans: u64_at(buf, 208),
            dsack_dups: u32_at(buf, 216),
            reord_seen: u32_at(buf, 220),
            rcv_ooopack: u32_at(buf, 224),
            snd_wnd: u32_at(buf, 228),
            rcv_wnd: u32_at(buf, 232),
            rehash: u32_at(buf, 236),
            total_rto: u16_at(buf, 240),
            total_rto_recoveries: u16_at(buf, 242),
            total_rto_time: u32_at(buf, 244),
            received_ce: u32_at(buf, 248),
            delivered_e1_bytes: u32_at(buf, 252),
            delivered_e0_bytes: u32_at(buf, 256),
            delivered_ce_bytes: u32_at(buf, 260),
            received_e1_bytes: u32_at(buf, 264),
            received_e0_bytes: u32_at(buf, 268),
            received_ce_bytes: u32_at(buf, 272),
            accecn_fail_mode: None,
            accecn_opt_seen: None,
            ecn_mode: None,
            options2: None,
        };
        // Bytes 276..280: two u16 in 6.18, one u32 of bitfields from 7.0. Same length,
        // so only the release can tell them apart; unknown release → leave them out.
        if let Some(word) = u32_at(buf, 276) {
            if at_least(7, 0) {
                let (mode, seen, fail, options2) = bits::ecn_word(word);
                info.ecn_mode = Some(mode);
                info.accecn_opt_seen = Some(seen);
                info.accecn_fail_mode = Some(fail);
                info.options2 = Some(options2);
            } else if at_least(6, 18) {
                info.accecn_fail_mode = u16_at(buf, 276);
                info.accecn_opt_seen = u16_at(buf, 278);
            }
        }
        info
    }

    /// `true` on a listening socket (where `unacked`/`sacked` mean accept queue/backlog).
    pub fn is_listen(&self) -> bool {
        self.state == 10
    }
}

/// The bytes of a Linux `struct tcp_info` exactly as the kernel returned them, with the
/// kernel release that gives them their meaning: the raw record kept in
/// [`SysInfo::Linux`](crate::tcpinfo::SysInfo::Linux).
///
/// Kept as bytes rather than as a decoded [`LinuxTcpInfo`] so that taking a snapshot
/// copies 290 bytes instead of decoding ~80 fields nobody may look at;
/// [`decode`](Self::decode) gives the field-by-field view on demand. It serializes (and
/// `Debug`-prints) as that decoded view, so the JSON `sysInfo` is the kernel's fields.
///
/// ```
/// use conniver::tcpinfo::linux::{KernelRelease, LinuxTcpInfoBytes};
/// let mut buf = [0u8; 160]; // what a 4.6 kernel returns
/// buf[68..72].copy_from_slice(&1500u32.to_ne_bytes()); // rtt 1.5 ms
/// let raw = LinuxTcpInfoBytes::new(&buf, Some(KernelRelease::new(4, 6, 0))).unwrap();
/// assert_eq!(raw.as_bytes().len(), 160);
/// assert_eq!(raw.decode().rtt, 1500);
/// assert_eq!(raw.to_info().rtt, Some(std::time::Duration::from_micros(1500)));
/// ```
#[derive(Clone, Copy)]
pub struct LinuxTcpInfoBytes {
    /// The returned bytes, then zeros up to the 6.18 size.
    bytes: [u8; LINUX_MAX_LEN],
    /// How many bytes the kernel returned (`LINUX_MIN_LEN..=LINUX_MAX_LEN`).
    len: u16,
    /// The release of the kernel that returned them.
    release: Option<KernelRelease>,
}

impl LinuxTcpInfoBytes {
    /// Keeps `buf`, the bytes `getsockopt(TCP_INFO)` returned, from a kernel of `release`.
    /// Bytes past [`LINUX_MAX_LEN`] (a layout newer than this crate) are not kept.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` is shorter than [`LINUX_MIN_LEN`].
    pub fn new(buf: &[u8], release: Option<KernelRelease>) -> Result<Self> {
        let mut raw = Self::zeroed(release);
        let len = buf.len().min(LINUX_MAX_LEN);
        raw.buf_mut()
            .get_mut(..len)
            .unwrap_or_default()
            .copy_from_slice(buf.get(..len).unwrap_or_default());
        raw.set_len(len)?;
        Ok(raw)
    }

    /// An empty record (all zeros) for the syscall shim to fill in place through
    /// [`buf_mut`](Self::buf_mut), then [`set_len`](Self::set_len): the bytes are copied
    /// once, into the `Info`, and not moved around before.
    #[inline(always)]
    pub(crate) fn zeroed(release: Option<KernelRelease>) -> Self {
        LinuxTcpInfoBytes {
            bytes: [0; LINUX_MAX_LEN],
            len: 0,
            release,
        }
    }

    /// The whole buffer, for the kernel to write its prefix into (the rest stays zero).
    #[inline(always)]
    pub(crate) fn buf_mut(&mut self) -> &mut [u8; LINUX_MAX_LEN] {
        &mut self.bytes
    }

    /// Records that the kernel returned `len` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `len` is shorter than [`LINUX_MIN_LEN`] (the record
    /// then must not be used); `len` past the buffer is taken as the whole buffer.
    #[inline(always)]
    pub(crate) fn set_len(&mut self, len: usize) -> Result<()> {
        if len < LINUX_MIN_LEN {
            return Err(Error::Truncated {
                len,
                min: LINUX_MIN_LEN,
            });
        }
        // LINUX_MAX_LEN fits a u16; the fallback is never taken.
        self.len = u16::try_from(len.min(LINUX_MAX_LEN)).unwrap_or(LINUX_MAX_LEN as u16);
        Ok(())
    }

    /// The bytes the kernel returned.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    /// The release of the kernel that returned them (`None` when unknown).
    pub fn release(&self) -> Option<KernelRelease> {
        self.release
    }

    /// The field-by-field view: [`LinuxTcpInfo::decode`] of these bytes and release.
    #[inline]
    pub fn decode(&self) -> LinuxTcpInfo {
        LinuxTcpInfo::decode_checked_len(self.as_bytes(), self.release)
    }
}

impl PartialEq for LinuxTcpInfoBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes() && self.release == other.release
    }
}

impl Eq for LinuxTcpInfoBytes {}

impl std::fmt::Debug for LinuxTcpInfoBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.decode(), f)
    }
}

impl Serialize for LinuxTcpInfoBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.decode().serialize(s)
    }
}

/// The congestion-control algorithm's name (`TCP_CONGESTION`), stored inline (no heap).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CongestionControl {
    name: [u8; 16],
    len: u8,
}

impl CongestionControl {
    /// Decodes the NUL-padded name the kernel returns. `None` when empty or not UTF-8.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        let buf = buf.get(..buf.len().min(16))?;
        let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        let text = buf.get(..len)?;
        if len == 0 || std::str::from_utf8(text).is_err() {
            return None;
        }
        let mut name = [0u8; 16];
        name.get_mut(..len)?.copy_from_slice(text);
        Some(CongestionControl {
            name,
            len: u8::try_from(len).ok()?,
        })
    }

    /// The name, e.g. `"cubic"` or `"bbr"`.
    pub fn as_str(&self) -> &str {
        let bytes = self.name.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::fmt::Debug for CongestionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for CongestionControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CongestionControl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Algorithm-specific state from `TCP_CC_INFO` (`union tcp_cc_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "algorithm")]
#[non_exhaustive]
pub enum CcInfo {
    /// `struct tcp_bbr_info` (20 bytes).
    #[serde(rename = "bbr", rename_all = "camelCase")]
    Bbr {
        /// Estimated bottleneck bandwidth, **bytes/s** (`bbr_bw_hi << 32 | bbr_bw_lo`).
        bandwidth: u64,
        /// BBR's min RTT, µs.
        min_rtt_us: u32,
        /// Pacing gain ×256 (256 = 1.0).
        pacing_gain: u32,
        /// Cwnd gain ×256.
        cwnd_gain: u32,
    },
    /// `struct tcpvegas_info` (16 bytes), also used by `nv`, `illinois`, `veno`.
    #[serde(rename = "vegas", rename_all = "camelCase")]
    Vegas {
        /// `tcpv_enabled`.
        enabled: u32,
        /// `tcpv_rttcnt`: RTT samples.
        rtt_count: u32,
        /// `tcpv_rtt`, µs.
        rtt_us: u32,
        /// `tcpv_minrtt`, µs.
        min_rtt_us: u32,
    },
    /// `struct tcp_dctcp_info` (16 bytes).
    #[serde(rename = "dctcp", rename_all = "camelCase")]
    Dctcp {
        /// `dctcp_enabled`.
        enabled: u16,
        /// `dctcp_ce_state`.
        ce_state: u16,
        /// `dctcp_alpha`.
        alpha: u32,
        /// `dctcp_ab_ecn`: bytes acked with ECE.
        ab_ecn: u32,
        /// `dctcp_ab_tot`: bytes acked.
        ab_tot: u32,
    },
}

impl CcInfo {
    /// Decodes `TCP_CC_INFO` bytes for the algorithm `cc` (from `TCP_CONGESTION`).
    /// `None` for algorithms without extra state (cubic, reno: length 0) or short buffers.
    pub fn decode(cc: &str, buf: &[u8]) -> Option<Self> {
        match cc {
            "bbr" | "bbr2" | "bbr3" => {
                let lo = u64::from(u32_at(buf, 0)?);
                let hi = u64::from(u32_at(buf, 4)?);
                Some(CcInfo::Bbr {
                    bandwidth: (hi << 32) | lo,
                    min_rtt_us: u32_at(buf, 8)?,
                    pacing_gain: u32_at(buf, 12)?,
                    cwnd_gain: u32_at(buf, 16)?,
                })
            }
            "vegas" | "nv" | "illinois" | "veno" => Some(CcInfo::Vegas {
                enabled: u32_at(buf, 0)?,
                rtt_count: u32_at(buf, 4)?,
                rtt_us: u32_at(buf, 8)?,
                min_rtt_us: u32_at(buf, 12)?,
            }),
            "dctcp" => Some(CcInfo::Dctcp {
                enabled: u16_at(buf, 0)?,
                ce_state: u16_at(buf, 2)?,
                alpha: u32_at(buf, 4)?,
                ab_ecn: u32_at(buf, 8)?,
                ab_tot: u32_at(buf, 12)?,
            }),
            _ => None,
        }
    }
}

/// Socket memory accounting from `SO_MEMINFO` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MemInfo {
    /// Receive queue memory allocated.
    pub rmem_alloc: u32,
    /// Receive buffer size (`SO_RCVBUF`).
    pub rcvbuf: u32,
    /// Transmit memory allocated.
    pub wmem_alloc: u32,
    /// Send buffer size (`SO_SNDBUF`).
    pub sndbuf: u32,
    /// Forward-allocated memory.
    pub fwd_alloc: u32,
    /// Bytes queued for transmission.
    pub wmem_queued: u32,
    /// Option memory.
    pub optmem: u32,
    /// Backlog queue memory.
    pub backlog: u32,
    /// Packets dropped before reaching the socket.
    pub drops: u32,
}

impl MemInfo {
    /// Bytes `SO_MEMINFO` returns (`SK_MEMINFO_VARS` × u32).
    pub const LEN: usize = 36;

    /// Decodes the 9 u32 of `SO_MEMINFO`; `None` when fewer than 36 bytes.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        Some(MemInfo {
            rmem_alloc: u32_at(buf, 0)?,
            rcvbuf: u32_at(buf, 4)?,
            wmem_alloc: u32_at(buf, 8)?,
            sndbuf: u32_at(buf, 12)?,
            fwd_alloc: u32_at(buf, 16)?,
            wmem_queued: u32_at(buf, 20)?,
            optmem: u32_at(buf, 24)?,
            backlog: u32_at(buf, 28)?,
            drops: u32_at(buf, 32)?,
        })
    }
}

impl LinuxTcpInfoBytes {
    /// The `N` bytes at `off` of the fixed-size buffer. Every caller passes a constant
    /// `off` inside [`LINUX_MAX_LEN`], so the check folds away; bytes the kernel did not
    /// return read as zero.
    #[inline(always)]
    fn at<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.bytes.get(off..off.saturating_add(N)) {
            out.copy_from_slice(src);
        }
        out
    }

    /// The `u32` at `off`, a field of the 2.6.0 layout (always returned).
    #[inline(always)]
    fn u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.at(off))
    }

    /// The `u32` at `off`, `Some` iff all of it lies within the first `len` bytes.
    #[inline(always)]
    fn opt_u32(&self, off: usize, len: usize) -> Option<u32> {
        let v = self.u32(off);
        (len >= off.saturating_add(4)).then_some(v)
    }

    /// The `u64` at `off`, `Some` iff all of it lies within the first `len` bytes.
    #[inline(always)]
    fn opt_u64(&self, off: usize, len: usize) -> Option<u64> {
        let v = u64::from_ne_bytes(self.at(off));
        (len >= off.saturating_add(8)).then_some(v)
    }

    /// The normalized view: units converted, "unset" sentinels turned into `None`,
    /// listener-only meanings moved to `accept_queue`/`accept_backlog`; these bytes are
    /// its [`sys_info`](crate::Info::sys_info).
    ///
    /// Reads each field straight from the buffer (the offsets of
    /// [`LinuxTcpInfo::decode`]; a test holds the two to the same answers) and writes the
    /// `Info` in one go: this is most of `snapshot()`'s user-space time.
    // Never inlined: `snapshot()` around it is, and then passes the caller's own variable
    // as the place to write the `Info` into.
    #[inline(never)]
    pub fn to_info(&self) -> crate::Info {
        if usize::from(self.len) >= NORMALIZED_END {
            // Every kernel since 6.2: each field `Info` uses is there, and with the length
            // a constant the ~30 presence checks fold away.
            self.normalize(NORMALIZED_END)
        } else {
            self.normalize_short()
        }
    }

    /// [`to_info`](Self::to_info) of a record from a kernel older than 6.2, kept apart so
    /// that the common path stays short and straight.
    #[cold]
    #[inline(never)]
    fn normalize_short(&self) -> crate::Info {
        self.normalize(usize::from(self.len))
    }

    /// [`to_info`](Self::to_info) as if the kernel had returned `len` bytes.
    #[inline(always)]
    fn normalize(&self, len: usize) -> crate::Info {
        use crate::tcpinfo::info::{Info, SysInfo, TcpOptions, TcpState};
        use std::time::Duration;

        let us = |v: u32| Duration::from_micros(u64::from(v));
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        // state, ca_state, retransmits, probes, backoff, options, wscales, byte 7.
        let [state, _, retransmits, _, _, flags, wscale, byte7] = self.at::<8>(0);
        let (snd_wscale, rcv_wscale) = bits::wscale(wscale);
        let options = |wscale: u8| TcpOptions {
            timestamps: flags & opt::TIMESTAMPS != 0,
            sack: flags & opt::SACK != 0,
            window_scale: (flags & opt::WSCALE != 0).then_some(wscale),
            ecn: flags & opt::ECN != 0,
            ecn_seen: flags & opt::ECN_SEEN != 0,
            syn_data: flags & opt::SYN_DATA != 0,
        };
        let listen = state == 10;
        let app_limited = self
            .release
            .is_some_and(|r| r >= KernelRelease::new(4, 9, 0))
            .then(|| bits::app_limited(byte7));
        let (snd_mss, unacked, snd_cwnd) = (self.u32(16), self.u32(24), self.u32(80));

        Info {
            state: Some(TcpState::from_linux(state)),
            tx_options: Some(options(snd_wscale)),
            rx_options: Some(options(rcv_wscale)),
            tx_mss: Some(snd_mss),
            rx_mss: Some(self.u32(20)),
            rtt: Some(us(self.u32(68))),
            rtt_var: Some(us(self.u32(72))),
            min_rtt: self.opt_u32(148, len).filter(|&v| v != u32::MAX).map(us),
            rto: Some(us(self.u32(8))),
            ato: Some(us(self.u32(12))),
            since_last_tx: Some(ms(self.u32(44))),
            since_last_rx: Some(ms(self.u32(52))),
            since_last_rx_ack: Some(ms(self.u32(56))),
            rx_window: self.opt_u32(232, len),
            tx_window: self.opt_u32(228, len),
            tx_ssthresh: Some(self.u32(76)).filter(|&v| v < LINUX_INFINITE_SSTHRESH),
            rx_ssthresh: Some(self.u32(64)),
            cwnd_bytes: Some(u64::from(snd_cwnd) * u64::from(snd_mss)),
            cwnd_segs: Some(snd_cwnd),
            retransmits: Some(retransmits),
            total_retrans: self.opt_u32(100, len),
            unacked: (!listen).then_some(unacked),
            lost: Some(self.u32(32)),
            bytes_sent: self.opt_u64(200, len),
            bytes_acked: self.opt_u64(120, len),
            bytes_received: self.opt_u64(128, len),
            bytes_retrans: self.opt_u64(208, len),
            bytes_in_flight: None,
            connection_time: None,
            segs_out: self.opt_u32(136, len),
            segs_in: self.opt_u32(140, len),
            data_segs_out: self.opt_u32(156, len),
            data_segs_in: self.opt_u32(152, len),
            delivery_rate: self.opt_u64(160, len),
            delivery_rate_app_limited: app_limited,
            pacing_rate: self.opt_u64(104, len),
            busy_time: self.opt_u64(168, len).map(Duration::from_micros),
            rwnd_limited: self.opt_u64(176, len).map(Duration::from_micros),
            sndbuf_limited: self.opt_u64(184, len).map(Duration::from_micros),
            notsent_bytes: self.opt_u32(144, len),
            reordering: Some(self.u32(88)),
            pmtu: Some(self.u32(60)),
            accept_queue: listen.then_some(unacked),
            accept_backlog: listen.then_some(self.u32(28)),
            congestion_control: None,
            cc_info: None,
            mem_info: None,
            sys_info: SysInfo::Linux(*self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normalization written against the decoded struct (how `to_info` was first
    /// written): the oracle for `LinuxTcpInfoBytes::to_info`, which reads the bytes.
    fn reference_info(d: &LinuxTcpInfo, sys_info: crate::tcpinfo::info::SysInfo) -> crate::Info {
        use crate::tcpinfo::info::{Info, TcpOptions, TcpState};
        use std::time::Duration;

        let us = |v: u32| Duration::from_micros(u64::from(v));
        let ms = |v: u32| Duration::from_millis(u64::from(v));
        let options = |wscale: u8| TcpOptions {
            timestamps: d.options & opt::TIMESTAMPS != 0,
            sack: d.options & opt::SACK != 0,
            window_scale: (d.options & opt::WSCALE != 0).then_some(wscale),
            ecn: d.options & opt::ECN != 0,
            ecn_seen: d.options & opt::ECN_SEEN != 0,
            syn_data: d.options & opt::SYN_DATA != 0,
        };
        let listen = d.is_listen();

        let mut info = Info::empty(sys_info);
        info.state = Some(TcpState::from_linux(d.state));
        info.tx_options = Some(options(d.snd_wscale));
        info.rx_options = Some(options(d.rcv_wscale));
        info.tx_mss = Some(d.snd_mss);
        info.rx_mss = Some(d.rcv_mss);
        info.rtt = Some(us(d.rtt));
        info.rtt_var = Some(us(d.rttvar));
        info.min_rtt = d.min_rtt.filter(|&v| v != u32::MAX).map(us);
        info.rto = Some(us(d.rto));
        info.ato = Some(us(d.ato));
        info.since_last_tx = Some(ms(d.last_data_sent));
        info.since_last_rx = Some(ms(d.last_data_recv));
        info.since_last_rx_ack = Some(ms(d.last_ack_recv));
        info.rx_window = d.rcv_wnd;
        info.tx_window = d.snd_wnd;
        info.tx_ssthresh = Some(d.snd_ssthresh).filter(|&v| v < LINUX_INFINITE_SSTHRESH);
        info.rx_ssthresh = Some(d.rcv_ssthresh);
        info.cwnd_segs = Some(d.snd_cwnd);
        info.cwnd_bytes = Some(u64::from(d.snd_cwnd) * u64::from(d.snd_mss));
        info.retransmits = Some(d.retransmits);
        info.total_retrans = d.total_retrans;
        info.unacked = (!listen).then_some(d.unacked);
        info.lost = Some(d.lost);
        info.bytes_sent = d.bytes_sent;
        info.bytes_acked = d.bytes_acked;
        info.bytes_received = d.bytes_received;
        info.bytes_retrans = d.bytes_retrans;
        info.segs_out = d.segs_out;
        info.segs_in = d.segs_in;
        info.data_segs_out = d.data_segs_out;
        info.data_segs_in = d.data_segs_in;
        info.delivery_rate = d.delivery_rate;
        info.delivery_rate_app_limited = d.delivery_rate_app_limited;
        info.pacing_rate = d.pacing_rate;
        info.busy_time = d.busy_time.map(Duration::from_micros);
        info.rwnd_limited = d.rwnd_limited.map(Duration::from_micros);
        info.sndbuf_limited = d.sndbuf_limited.map(Duration::from_micros);
        info.notsent_bytes = d.notsent_bytes;
        info.reordering = Some(d.reordering);
        info.pmtu = Some(d.pmtu);
        info.accept_queue = listen.then_some(d.unacked);
        info.accept_backlog = listen.then_some(d.sacked);
        info
    }

    /// Every optional field with the offset where it ends (from the kernel's uapi
    /// header history, see `shared/reference/linux-tcp-info.md`).
    fn optional_fields(i: &LinuxTcpInfo) -> Vec<(&'static str, usize, bool)> {
        vec![
            ("rcv_rtt", 96, i.rcv_rtt.is_some()),
            ("rcv_space", 100, i.rcv_space.is_some()),
            ("total_retrans", 104, i.total_retrans.is_some()),
            ("pacing_rate", 112, i.pacing_rate.is_some()),
            ("max_pacing_rate", 120, i.max_pacing_rate.is_some()),
            ("bytes_acked", 128, i.bytes_acked.is_some()),
            ("bytes_received", 136, i.bytes_received.is_some()),
            ("segs_out", 140, i.segs_out.is_some()),
            ("segs_in", 144, i.segs_in.is_some()),
            ("notsent_bytes", 148, i.notsent_bytes.is_some()),
            ("min_rtt", 152, i.min_rtt.is_some()),
            ("data_segs_in", 156, i.data_segs_in.is_some()),
            ("data_segs_out", 160, i.data_segs_out.is_some()),
            ("delivery_rate", 168, i.delivery_rate.is_some()),
            ("busy_time", 176, i.busy_time.is_some()),
            ("rwnd_limited", 184, i.rwnd_limited.is_some()),
            ("sndbuf_limited", 192, i.sndbuf_limited.is_some()),
            ("delivered", 196, i.delivered.is_some()),
            ("delivered_ce", 200, i.delivered_ce.is_some()),
            ("bytes_sent", 208, i.bytes_sent.is_some()),
            ("bytes_retrans", 216, i.bytes_retrans.is_some()),
            ("dsack_dups", 220, i.dsack_dups.is_some()),
            ("reord_seen", 224, i.reord_seen.is_some()),
            ("rcv_ooopack", 228, i.rcv_ooopack.is_some()),
            ("snd_wnd", 232, i.snd_wnd.is_some()),
            ("rcv_wnd", 236, i.rcv_wnd.is_some()),
            ("rehash", 240, i.rehash.is_some()),
            ("total_rto", 242, i.total_rto.is_some()),
            (
                "total_rto_recoveries",
                244,
                i.total_rto_recoveries.is_some(),
            ),
            ("total_rto_time", 248, i.total_rto_time.is_some()),
            ("received_ce", 252, i.received_ce.is_some()),
            ("delivered_e1_bytes", 256, i.delivered_e1_bytes.is_some()),
            ("delivered_e0_bytes", 260, i.delivered_e0_bytes.is_some()),
            ("delivered_ce_bytes", 264, i.delivered_ce_bytes.is_some()),
            ("received_e1_bytes", 268, i.received_e1_bytes.is_some()),
            ("received_e0_bytes", 272, i.received_e0_bytes.is_some()),
            ("received_ce_bytes", 276, i.received_ce_bytes.is_some()),
            ("accecn_fail_mode", 280, i.accecn_fail_mode.is_some()),
            ("accecn_opt_seen", 280, i.accecn_opt_seen.is_some()),
        ]
    }

    /// (returned length, the release that returns it)
    const HISTORY: [(usize, KernelRelease); 13] = [
        (104, KernelRelease::new(3, 14, 0)),
        (120, KernelRelease::new(3, 15, 0)),
        (136, KernelRelease::new(4, 1, 0)),
        (144, KernelRelease::new(4, 2, 0)),
        (160, KernelRelease::new(4, 6, 0)),
        (168, KernelRelease::new(4, 9, 0)),
        (192, KernelRelease::new(4, 10, 0)),
        (200, KernelRelease::new(4, 18, 0)),
        (224, KernelRelease::new(4, 19, 0)),
        (232, KernelRelease::new(5, 4, 0)),
        (240, KernelRelease::new(6, 2, 0)),
        (248, KernelRelease::new(6, 7, 0)),
        (280, KernelRelease::new(6, 18, 0)),
    ];

    /// A buffer whose every u32 slot holds its own offset, so a misplaced read shows.
    fn patterned(len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        for (slot, chunk) in buf.chunks_mut(4).enumerate() {
            let v = (slot as u32 * 4).to_ne_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(&v[..n]);
        }
        buf
    }

    #[test]
    fn every_historical_length_has_exactly_its_kernels_fields() {
        for (len, release) in HISTORY {
            let info = LinuxTcpInfo::decode(&patterned(len), Some(release)).unwrap();
            assert_eq!(info.len, len);
            for (name, end, present) in optional_fields(&info) {
                assert_eq!(present, end <= len, "{name} (ends at {end}) with len {len}");
            }
        }
    }

    #[test]
    fn to_info_reads_what_decode_reads() {
        let releases = HISTORY.map(|(_, r)| Some(r));
        for len in (LINUX_MIN_LEN..=LINUX_MAX_LEN).chain([300]) {
            let mut buf = patterned(len);
            // A listener on odd lengths, so both meanings of unacked/sacked are covered.
            buf[0] = if len % 2 == 0 { 1 } else { 10 };
            buf[5] = 0xff;
            for release in releases.iter().copied().chain([None]) {
                let raw = LinuxTcpInfoBytes::new(&buf, release).unwrap();
                let decoded = LinuxTcpInfo::decode(&buf[..len.min(LINUX_MAX_LEN)], release);
                let decoded = decoded.unwrap();
                assert_eq!(raw.decode(), decoded);
                assert_eq!(
                    raw.to_info(),
                    reference_info(&decoded, crate::tcpinfo::SysInfo::Linux(raw)),
                    "len {len}, release {release:?}"
                );
            }
        }
    }

    #[test]
    fn odd_lengths_cut_at_the_last_whole_field() {
        for len in [92, 93, 99, 101, 105, 150, 161, 231, 233, 241, 279] {
            let info = LinuxTcpInfo::decode(&patterned(len), None).unwrap();
            for (name, end, present) in optional_fields(&info) {
                assert_eq!(present, end <= len, "{name} (ends at {end}) with len {len}");
            }
        }
    }

    #[test]
    fn too_short_is_a_typed_error() {
        for len in [0, 1, 8, 91] {
            match LinuxTcpInfo::decode(&vec![0u8; len], None) {
                Err(Error::Truncated { len: l, min }) => {
                    assert_eq!((l, min), (len, LINUX_MIN_LEN));
                }
                other => panic!("len {len}: {other:?}"),
            }
        }
    }

    #[test]
    fn fields_come_from_their_documented_offsets() {
        let buf = patterned(280);
        let i = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(6, 18, 0))).unwrap();
        // Each u32 slot holds its offset; u64 fields read two slots.
        let u64_at = |off: u64| {
            let lo = off;
            let hi = off + 4;
            if cfg!(target_endian = "little") {
                lo | hi << 32
            } else {
                lo << 32 | hi
            }
        };
        assert_eq!(i.rto, 8);
        assert_eq!(i.snd_mss, 16);
        assert_eq!(i.rtt, 68);
        assert_eq!(i.rttvar, 72);
        assert_eq!(i.snd_cwnd, 80);
        assert_eq!(i.reordering, 88);
        assert_eq!(i.total_retrans, Some(100));
        assert_eq!(i.pacing_rate, Some(u64_at(104)));
        assert_eq!(i.bytes_received, Some(u64_at(128)));
        assert_eq!(i.min_rtt, Some(148));
        assert_eq!(i.delivery_rate, Some(u64_at(160)));
        assert_eq!(i.rwnd_limited, Some(u64_at(176)));
        assert_eq!(i.bytes_retrans, Some(u64_at(208)));
        assert_eq!(i.snd_wnd, Some(228));
        assert_eq!(i.rcv_wnd, Some(232));
        assert_eq!(i.total_rto_time, Some(244));
        assert_eq!(i.received_ce_bytes, Some(272));
    }

    #[test]
    fn byte7_bitfields_need_the_release() {
        let mut buf = patterned(280);
        // app_limited = 1, fastopen_client_fail = 2, laid out as the compiler does.
        buf[7] = if cfg!(target_endian = "little") {
            0b0000_0101
        } else {
            0b1100_0000
        };
        let old = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(4, 8, 0))).unwrap();
        assert_eq!(old.delivery_rate_app_limited, None);
        assert_eq!(old.fastopen_client_fail, None);
        let mid = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(4, 9, 0))).unwrap();
        assert_eq!(mid.delivery_rate_app_limited, Some(true));
        assert_eq!(mid.fastopen_client_fail, None);
        let new = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(5, 5, 0))).unwrap();
        assert_eq!(new.fastopen_client_fail, Some(2));
        let unknown = LinuxTcpInfo::decode(&buf, None).unwrap();
        assert_eq!(unknown.delivery_rate_app_limited, None);
    }

    #[test]
    fn window_scale_nibbles() {
        let mut buf = patterned(104);
        buf[6] = if cfg!(target_endian = "little") {
            0x79
        } else {
            0x97
        };
        let i = LinuxTcpInfo::decode(&buf, None).unwrap();
        assert_eq!((i.snd_wscale, i.rcv_wscale), (9, 7));
    }

    #[test]
    fn accecn_tail_6_18_versus_7_0() {
        let mut buf = patterned(280);
        buf[276..278].copy_from_slice(&5u16.to_ne_bytes());
        buf[278..280].copy_from_slice(&2u16.to_ne_bytes());
        let v618 = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(6, 18, 0))).unwrap();
        assert_eq!(v618.accecn_fail_mode, Some(5));
        assert_eq!(v618.accecn_opt_seen, Some(2));
        assert_eq!(v618.ecn_mode, None);

        // 7.0: ecn_mode:2 = 2 (AccECN), opt_seen:2 = 3, fail_mode:4 = 0b1010, options2 = 0xabcdef.
        let word: u32 = if cfg!(target_endian = "little") {
            2 | 3 << 2 | 0b1010 << 4 | 0xab_cdef << 8
        } else {
            2 << 30 | 3 << 28 | 0b1010 << 24 | 0xab_cdef
        };
        buf[276..280].copy_from_slice(&word.to_ne_bytes());
        let v70 = LinuxTcpInfo::decode(&buf, Some(KernelRelease::new(7, 0, 0))).unwrap();
        assert_eq!(v70.ecn_mode, Some(2));
        assert_eq!(v70.accecn_opt_seen, Some(3));
        assert_eq!(v70.accecn_fail_mode, Some(0b1010));
        assert_eq!(v70.options2, Some(0xab_cdef));

        // Unknown release: the four bytes are ambiguous, so they are left out.
        let unknown = LinuxTcpInfo::decode(&buf, None).unwrap();
        assert_eq!(unknown.accecn_fail_mode, None);
        assert_eq!(unknown.ecn_mode, None);
        assert!(unknown.received_ce_bytes.is_some());
    }

    #[test]
    fn release_strings() {
        let p = |s| KernelRelease::parse(s);
        assert_eq!(p("6.18.0-1-amd64"), Some(KernelRelease::new(6, 18, 0)));
        assert_eq!(
            p("5.15.167.4-microsoft-standard-WSL2"),
            Some(KernelRelease::new(5, 15, 167))
        );
        assert_eq!(p("4.9.337"), Some(KernelRelease::new(4, 9, 337)));
        assert_eq!(p("6.18-rc1"), Some(KernelRelease::new(6, 18, 0)));
        assert_eq!(
            p("3.10.0-1160.el7.x86_64"),
            Some(KernelRelease::new(3, 10, 0))
        );
        assert_eq!(p("7.0"), Some(KernelRelease::new(7, 0, 0)));
        assert_eq!(p("garbage"), None);
        assert_eq!(p(""), None);
        assert!(KernelRelease::new(6, 18, 0) < KernelRelease::new(7, 0, 0));
    }

    #[test]
    fn normalized_view_units_and_sentinels() {
        let mut buf = vec![0u8; 280];
        let put = |buf: &mut Vec<u8>, off: usize, v: u32| {
            buf[off..off + 4].copy_from_slice(&v.to_ne_bytes())
        };
        buf[0] = 1;
        buf[5] = opt::TIMESTAMPS | opt::SACK | opt::WSCALE;
        buf[6] = if cfg!(target_endian = "little") {
            0x78
        } else {
            0x87
        };
        put(&mut buf, 16, 1448); // snd_mss
        put(&mut buf, 44, 25); // last_data_sent, ms
        put(&mut buf, 68, 1500); // rtt µs
        put(&mut buf, 76, LINUX_INFINITE_SSTHRESH);
        put(&mut buf, 80, 10); // cwnd
        put(&mut buf, 148, u32::MAX); // min_rtt: no sample
        put(&mut buf, 232, 65535); // rcv_wnd
        let info = LinuxTcpInfoBytes::new(&buf, Some(KernelRelease::new(6, 18, 0)))
            .unwrap()
            .to_info();
        assert_eq!(info.state, Some(crate::TcpState::Established));
        assert_eq!(info.rtt, Some(std::time::Duration::from_micros(1500)));
        assert_eq!(
            info.since_last_tx,
            Some(std::time::Duration::from_millis(25))
        );
        assert_eq!(info.tx_ssthresh, None);
        assert_eq!(info.min_rtt, None);
        assert_eq!(info.cwnd_segs, Some(10));
        assert_eq!(info.cwnd_bytes, Some(14480));
        assert_eq!(info.rx_window, Some(65535));
        assert_eq!(info.accept_queue, None);
        let json = serde_json::to_value(info).unwrap();
        assert_eq!(json["state"], "ESTABLISHED");
        assert_eq!(json["rtt"], 1_500_000);
        assert_eq!(json["lastTxAt"], 25_000_000);
        assert_eq!(json["txMSS"], 1448);
        assert_eq!(json["txCWindowBytes"], 14480);
        assert_eq!(
            json["txOptions"],
            serde_json::json!(["Timestamps", "SACK", "WindowScale:08"])
        );
        assert_eq!(
            json["rxOptions"],
            serde_json::json!(["Timestamps", "SACK", "WindowScale:07"])
        );
        assert!(
            json.get("minRtt").is_none(),
            "no sample must be omitted, not 0"
        );
        assert!(json.get("txSSThreshold").is_none());
        assert_eq!(json["sysInfo"]["rtt"], 1500);
    }

    #[test]
    fn listener_meanings() {
        let mut buf = vec![0u8; 104];
        buf[0] = 10;
        buf[24..28].copy_from_slice(&3u32.to_ne_bytes());
        buf[28..32].copy_from_slice(&128u32.to_ne_bytes());
        let info = LinuxTcpInfoBytes::new(&buf, None).unwrap().to_info();
        assert_eq!(info.state, Some(crate::TcpState::Listen));
        assert_eq!(info.accept_queue, Some(3));
        assert_eq!(info.accept_backlog, Some(128));
        assert_eq!(info.unacked, None);
    }

    #[test]
    fn companion_decoders() {
        assert_eq!(
            CongestionControl::decode(b"cubic\0\0\0\0\0\0\0\0\0\0\0")
                .unwrap()
                .as_str(),
            "cubic"
        );
        assert_eq!(CongestionControl::decode(b"bbr").unwrap().as_str(), "bbr");
        assert!(CongestionControl::decode(b"\0\0\0").is_none());
        assert!(CongestionControl::decode(&[0xff, 0xfe]).is_none());

        let mut bbr = Vec::new();
        for v in [0x1000u32, 0x2, 5000, 739, 512] {
            bbr.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(
            CcInfo::decode("bbr", &bbr),
            Some(CcInfo::Bbr {
                bandwidth: 0x2_0000_1000,
                min_rtt_us: 5000,
                pacing_gain: 739,
                cwnd_gain: 512
            })
        );
        assert_eq!(CcInfo::decode("bbr", &bbr[..19]), None);
        assert_eq!(CcInfo::decode("cubic", &[]), None);

        let mem: Vec<u8> = (1..=9u32).flat_map(|v| v.to_ne_bytes()).collect();
        let m = MemInfo::decode(&mem).unwrap();
        assert_eq!((m.rmem_alloc, m.drops), (1, 9));
        assert!(MemInfo::decode(&mem[..35]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
                                       major in 0u16..10, minor in 0u16..30) {
            let release = Some(KernelRelease::new(major, minor, 0));
            let kept = buf.get(..buf.len().min(LINUX_MAX_LEN)).unwrap();
            match (LinuxTcpInfo::decode(kept, release), LinuxTcpInfoBytes::new(&buf, release)) {
                (Ok(decoded), Ok(raw)) => {
                    // The kept bytes decode, print and serialize as the pure decoder's view.
                    proptest::prop_assert_eq!(raw.decode(), decoded);
                    proptest::prop_assert_eq!(raw.as_bytes(), kept);
                    let info = raw.to_info();
                    proptest::prop_assert_eq!(
                        info,
                        reference_info(&decoded, crate::tcpinfo::SysInfo::Linux(raw))
                    );
                    proptest::prop_assert_eq!(
                        serde_json::to_value(info.sys_info).unwrap(),
                        serde_json::to_value(decoded).unwrap()
                    );
                    proptest::prop_assert_eq!(format!("{raw:?}"), format!("{decoded:?}"));
                    let _ = serde_json::to_string(&info).unwrap();
                }
                (Err(_), Err(_)) => {}
                (a, b) => proptest::prop_assert!(false, "decode {a:?} vs bytes {b:?}"),
            }
            let _ = CongestionControl::decode(&buf);
            let _ = MemInfo::decode(&buf);
            for cc in ["bbr", "vegas", "dctcp", "cubic"] {
                let _ = CcInfo::decode(cc, &buf);
            }
        }

        #[test]
        fn arbitrary_release_strings_never_panic(s in ".{0,40}") {
            let _ = KernelRelease::parse(&s);
        }
    }
}
