//! FreeBSD `tcp_info` decoder: the first four bytes (little endian) are the kernel's
//! `kern.osreldate` (0: unknown), the rest the bytes `getsockopt(TCP_INFO)` returned. Any
//! input → no panic; a field past offset 131 is there exactly when the release has it and
//! the buffer holds it; the fields every release fills do not depend on the release.
#![no_main]

use conniver::Error;
use conniver::tcpinfo::SysInfo;
use conniver::tcpinfo::freebsd::{FREEBSD_13_3, FREEBSD_14_0, FREEBSD_MIN_LEN, FreeBsdTcpInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (osreldate, buf) = match data {
        [a, b, c, d, rest @ ..] => {
            let r = u32::from_le_bytes([*a, *b, *c, *d]);
            ((r != 0).then_some(r), rest)
        }
        _ => (None, data),
    };
    let raw = match FreeBsdTcpInfo::decode(buf, osreldate) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(
                matches!(e, Error::Truncated { len, min: FREEBSD_MIN_LEN } if len == buf.len()),
                "{e:?} for {} bytes",
                buf.len()
            );
            assert!(buf.len() < FREEBSD_MIN_LEN);
            return;
        }
    };
    assert!(buf.len() >= FREEBSD_MIN_LEN);
    assert_eq!(raw.len, buf.len());
    assert_eq!(raw.osreldate, osreldate);

    // Release-dependent fields: present iff the release has them and the bytes are there.
    let v14 = osreldate.is_some_and(|r| r >= FREEBSD_14_0);
    let v13_3 = osreldate.is_some_and(|r| (FREEBSD_13_3..1_400_000).contains(&r)) || v14;
    let has = |release: bool, end: usize| release && buf.len() >= end;
    assert_eq!(raw.delivered_ce.is_some(), has(v14, 136));
    assert_eq!(raw.received_ce.is_some(), has(v14, 140));
    assert_eq!(raw.total_tlp.is_some(), has(v14, 168));
    assert_eq!(raw.total_tlp_bytes.is_some(), has(v14, 176));
    assert_eq!(raw.snd_una.is_some(), has(v13_3, 180));
    assert_eq!(raw.snd_max.is_some(), has(v13_3, 184));
    assert_eq!(raw.rcv_numsacks.is_some(), has(v13_3, 188));
    assert_eq!(raw.rcv_adv.is_some(), has(v13_3, 192));
    assert_eq!(raw.dupacks.is_some(), has(v13_3, 196));

    // Without a release: the same common fields, nothing else.
    let mut common = raw;
    common.osreldate = None;
    common.delivered_ce = None;
    common.received_ce = None;
    common.total_tlp = None;
    common.total_tlp_bytes = None;
    common.snd_una = None;
    common.snd_max = None;
    common.rcv_numsacks = None;
    common.rcv_adv = None;
    common.dupacks = None;
    assert_eq!(FreeBsdTcpInfo::decode(buf, None).unwrap(), common);

    let _ = raw.tcp_state();
    let info = raw.to_info();
    assert!(matches!(info.sys(), SysInfo::FreeBsd(r) if *r == raw));
    let json = serde_json::to_string(&info).expect("Info always serializes");
    assert!(json.starts_with('{'));
    serde_json::to_string(&raw).expect("the raw struct always serializes");
});
