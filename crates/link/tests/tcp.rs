//! The channel over real loopback TCP (127.0.0.1, port chosen by the system).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Devices;
use itb_link::transport::tcp::{self, ServerLimits, TransportError};
use itb_link::{CloseReason, ResponderConfig, Role, Timeouts, VersionSet};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A pump server that answers each payload with its role and the payload, reversed.
async fn start_pump(config: ResponderConfig, limits: ServerLimits) -> (SocketAddr, JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback listener");
    let address = listener.local_addr().expect("bound address");
    let server = tokio::spawn(tcp::serve(listener, config, limits, |role: Role, payload: Vec<u8>| {
        let mut answer = format!("{role}:").into_bytes();
        answer.extend(payload.iter().rev());
        answer
    }));
    (address, server)
}

#[tokio::test]
async fn request_and_answer_over_loopback() {
    let devices = Devices::new();
    let (address, server) = start_pump(devices.pump_config(), ServerLimits::default()).await;

    let mut clinician =
        tcp::connect(address, devices.config_for(&devices.clinician)).await.expect("clinician connects");
    assert_eq!(clinician.peer_key(), devices.pump.public());
    assert_eq!(clinician.version(), itb_link::PROTOCOL_VERSION);
    assert_eq!(clinician.request(b"abc").await.expect("answer"), b"clinician:cba");
    assert_eq!(clinician.request(b"").await.expect("answer"), b"clinician:");

    let mut patient = tcp::connect(address, devices.config_for(&devices.patient)).await.expect("PTM connects");
    let large = vec![7_u8; 60_000];
    let answer = patient.request(&large).await.expect("answer to a large payload");
    assert_eq!(&answer[..8], b"patient:");
    assert_eq!(answer.len(), 8 + large.len());

    clinician.close().await;
    patient.close().await;
    server.abort();
}

#[tokio::test]
async fn unknown_key_and_wrong_version_are_refused_over_loopback() {
    let devices = Devices::new();
    let (address, server) = start_pump(devices.pump_config(), ServerLimits::default()).await;

    let stranger = tcp::connect(address, devices.config_for(&devices.stranger)).await;
    assert!(matches!(stranger, Err(TransportError::PeerHungUp)), "{stranger:?}");

    let mut future_programmer = devices.config_for(&devices.clinician);
    future_programmer.versions = VersionSet::new(&[7]).expect("valid");
    let refused = tcp::connect(address, future_programmer).await;
    assert!(matches!(refused, Err(TransportError::Closed(CloseReason::UnsupportedVersion { .. }))), "{refused:?}");
    server.abort();
}

/// One slot for each role, one place for a connection still in its handshake.
fn one_of_each() -> ServerLimits {
    ServerLimits { handshaking_max: 1, handshake_timeout: Duration::from_secs(5), clinician_max: 1, patient_max: 1 }
}

#[tokio::test]
async fn a_new_session_takes_the_slot_of_the_idle_session_of_its_role() {
    let devices = Devices::new();
    let (address, server) = start_pump(devices.pump_config(), one_of_each()).await;

    let mut first = tcp::connect(address, devices.config_for(&devices.clinician)).await.expect("first session");
    assert_eq!(first.request(b"x").await.expect("answer"), b"clinician:x");
    let mut patient = tcp::connect(address, devices.config_for(&devices.patient)).await.expect("PTM session");
    assert_eq!(patient.request(b"p").await.expect("answer"), b"patient:p");

    let mut second = tcp::connect(address, devices.config_for(&devices.clinician)).await.expect("second session");
    assert_eq!(second.request(b"y").await.expect("answer"), b"clinician:y");
    // The first was idle when the second came: it was closed, and what it sends now is not acted on.
    let late = first.request(b"z").await;
    assert!(matches!(late, Err(TransportError::PeerHungUp | TransportError::Io(_))), "{late:?}");
    // The other role's slot was not touched.
    assert_eq!(patient.request(b"q").await.expect("the PTM session is still open"), b"patient:q");
    assert_eq!(second.request(b"w").await.expect("answer"), b"clinician:w");
    server.abort();
}

#[tokio::test]
async fn server_closes_an_idle_session() {
    let devices = Devices::new();
    let mut config = devices.pump_config();
    config.timeouts = Timeouts { handshake: Duration::from_secs(5), idle: Duration::from_millis(200) };
    let (address, server) = start_pump(config, ServerLimits::default()).await;

    let mut clinician = tcp::connect(address, devices.config_for(&devices.clinician)).await.expect("connects");
    assert_eq!(clinician.request(b"a").await.expect("answer while active"), b"clinician:a");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = clinician.request(b"b").await;
    assert!(matches!(late, Err(TransportError::PeerHungUp | TransportError::Io(_))), "{late:?}");
    server.abort();
}

#[tokio::test]
async fn silent_client_is_dropped_at_the_handshake_timeout() {
    let devices = Devices::new();
    // The session's own handshake timeout, and the server's when it is the shorter one.
    let mut short_session = devices.pump_config();
    short_session.timeouts = Timeouts { handshake: Duration::from_millis(200), idle: Duration::from_secs(5) };
    let short_server = ServerLimits { handshake_timeout: Duration::from_millis(200), ..one_of_each() };
    for (config, limits) in [(short_session, one_of_each()), (devices.pump_config(), short_server)] {
        let (address, server) = start_pump(config, limits).await;
        // Connects and says nothing, holding the only handshaking place.
        let mut silent = tokio::net::TcpStream::connect(address).await.expect("tcp connect");
        let mut buffer = [0_u8; 16];
        let read =
            tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut silent, &mut buffer))
                .await
                .expect("the pump closes the connection well before 5 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        server.abort();
    }
}
