//! Linux `tcp_info` decoder: any bytes, any release → no panic, the kept bytes decode as
//! the pure decoder does, and the normalized view and its JSON are always producible.
#![no_main]

use conniver::tcpinfo::linux::{KernelRelease, LINUX_MAX_LEN, LinuxTcpInfo, LinuxTcpInfoBytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First two bytes pick the release, the rest is the kernel buffer.
    let (release, buf) = match data {
        [major, minor, rest @ ..] => (Some(KernelRelease::new(u16::from(*major % 9), u16::from(*minor % 40), 0)), rest),
        _ => (None, data),
    };
    if let Ok(raw) = LinuxTcpInfo::decode(buf, release) {
        assert_eq!(raw.len, buf.len());
        let kept = LinuxTcpInfoBytes::new(buf, release).expect("same minimum length");
        assert_eq!(kept.as_bytes(), &buf[..buf.len().min(LINUX_MAX_LEN)]);
        if buf.len() <= LINUX_MAX_LEN {
            assert_eq!(kept.decode(), raw);
        }
        let info = kept.to_info();
        let json = serde_json::to_string(&info).expect("Info always serializes");
        assert!(json.starts_with('{'));
    } else {
        assert!(buf.len() < conniver::tcpinfo::linux::LINUX_MIN_LEN);
        assert!(LinuxTcpInfoBytes::new(buf, release).is_err());
    }
    if let Ok(s) = std::str::from_utf8(buf) {
        let _ = KernelRelease::parse(s);
    }
});
