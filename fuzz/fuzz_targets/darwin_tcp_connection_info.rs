//! macOS `tcp_connection_info` decoder: any bytes → no panic; the returned length alone
//! decides the layout (104 or 112 bytes); the normalized view and both JSON forms are
//! always producible.
#![no_main]

use conniver::Error;
use conniver::tcpinfo::SysInfo;
use conniver::tcpinfo::darwin::{DARWIN_MAX_LEN, DARWIN_MIN_LEN, DarwinTcpConnectionInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = match DarwinTcpConnectionInfo::decode(data) {
        Ok(raw) => raw,
        Err(e) => {
            // The only error: fewer bytes than the oldest layout.
            assert!(
                matches!(e, Error::Truncated { len, min: DARWIN_MIN_LEN } if len == data.len()),
                "{e:?} for {} bytes",
                data.len()
            );
            assert!(data.len() < DARWIN_MIN_LEN);
            return;
        }
    };
    assert!(data.len() >= DARWIN_MIN_LEN);
    assert_eq!(raw.len, data.len());
    // 10.12.4+ field present exactly when the kernel returned the 112-byte layout.
    assert_eq!(
        raw.txretransmitpackets.is_some(),
        data.len() >= DARWIN_MAX_LEN
    );

    // The 104-byte prefix decodes to the same fields, minus the newer one.
    let mut old = raw;
    old.len = DARWIN_MIN_LEN;
    old.txretransmitpackets = None;
    assert_eq!(
        DarwinTcpConnectionInfo::decode(&data[..DARWIN_MIN_LEN]).unwrap(),
        old
    );

    let _ = raw.tcp_state();
    let info = raw.to_info();
    assert!(matches!(info.sys(), SysInfo::Darwin(r) if *r == raw));
    // Unavailable means absent, not 0.
    assert_eq!(
        info.total_retrans.is_some(),
        raw.txretransmitpackets.is_some()
    );
    let json = serde_json::to_string(&info).expect("Info always serializes");
    assert!(json.starts_with('{'));
    let sys = serde_json::to_value(raw).expect("the raw struct always serializes");
    assert_eq!(
        sys.get("txRetransmitPackets").is_some(),
        raw.txretransmitpackets.is_some()
    );
});
