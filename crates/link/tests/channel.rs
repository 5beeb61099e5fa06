//! The secure channel, end to end in memory: handshake, roles, refusals, replay and tamper,
//! version negotiation and downgrade, bounds and timeouts.

mod common;

use common::{Devices, delivered_anything, t};
use itb_link::channel::{HANDSHAKE_FRAME_MAX_LEN, MAX_QUEUED};
use itb_link::hello::{self, HELLO_MAX_LEN, HelloAnswer};
use itb_link::transport::memory::{Direction, MemoryPair, drain_events};
use itb_link::{
    ChannelError, CloseReason, Event, FrameError, MAX_PAYLOAD_LEN, PROTOCOL_VERSION, Phase, Role, Session, VersionSet,
    encode_frame,
};

fn versions(list: &[u8]) -> VersionSet {
    VersionSet::new(list).expect("valid versions")
}

fn closed_with(events: &[Event]) -> Option<&CloseReason> {
    match events.last() {
        Some(Event::Closed(reason)) => Some(reason),
        _ => None,
    }
}

/// Take every frame one side has queued.
fn take_transmits(session: &mut Session) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| session.poll_transmit()).collect()
}

#[test]
fn clinician_handshake_reports_role_and_carries_payloads_both_ways() {
    let devices = Devices::new();
    let mut pair = MemoryPair::new(devices.config_for(&devices.clinician), devices.pump_config(), t(0));
    pair.run(t(5));

    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Established {
            peer_role: Some(Role::Clinician),
            peer_key: devices.clinician.public(),
            version: PROTOCOL_VERSION
        }]
    );
    assert_eq!(
        drain_events(&mut pair.initiator),
        vec![Event::Established { peer_role: None, peer_key: devices.pump.public(), version: PROTOCOL_VERSION }]
    );
    assert_eq!(pair.responder.phase(), Phase::Established);

    pair.initiator.send(b"interrogate", t(10)).expect("established");
    pair.initiator.send(b"", t(10)).expect("an empty payload is a payload");
    pair.run(t(10));
    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Payload(b"interrogate".to_vec()), Event::Payload(vec![])]
    );

    pair.responder.send(b"status", t(20)).expect("established");
    pair.run(t(20));
    assert_eq!(drain_events(&mut pair.initiator), vec![Event::Payload(b"status".to_vec())]);
}

#[test]
fn payload_is_not_visible_on_the_wire() {
    let devices = Devices::new();
    let mut pair = MemoryPair::new(devices.config_for(&devices.clinician), devices.pump_config(), t(0));
    let mut wire = Vec::new();
    pair.run_with(t(0), |_, frame| {
        wire.extend_from_slice(&frame);
        vec![frame]
    });
    let secret = b"set rate 400 micrograms per day";
    pair.initiator.send(secret, t(1)).expect("established");
    pair.run_with(t(1), |_, frame| {
        wire.extend_from_slice(&frame);
        vec![frame]
    });
    assert_eq!(drain_events(&mut pair.responder).last(), Some(&Event::Payload(secret.to_vec())));
    assert!(!wire.windows(4).any(|window| secret.windows(4).any(|part| part == window)), "plaintext leaked");
    // Neither side's static public key travels in the clear either (IK encrypts the initiator's).
    assert!(!wire.windows(32).any(|window| window == devices.clinician.public().as_bytes()));
    assert!(!wire.windows(32).any(|window| window == devices.pump.public().as_bytes()));
}

#[test]
fn patient_key_is_reported_as_patient() {
    let devices = Devices::new();
    let mut pair = MemoryPair::new(devices.config_for(&devices.patient), devices.pump_config(), t(0));
    pair.run(t(0));
    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Established {
            peer_role: Some(Role::Patient),
            peer_key: devices.patient.public(),
            version: PROTOCOL_VERSION
        }]
    );
    assert_eq!(pair.responder.peer(), Some((devices.patient.public(), Some(Role::Patient), PROTOCOL_VERSION)));
}

#[test]
fn largest_payload_goes_through_and_one_more_byte_is_refused_without_closing() {
    let mut pair = Devices::new().established_clinician();
    let largest = vec![0x5a; MAX_PAYLOAD_LEN];
    assert_eq!(
        pair.initiator.send(&[0; MAX_PAYLOAD_LEN + 1], t(1)),
        Err(ChannelError::PayloadTooLong { len: MAX_PAYLOAD_LEN + 1, max_len: MAX_PAYLOAD_LEN })
    );
    assert!(pair.initiator.is_established());
    pair.initiator.send(&largest, t(1)).expect("largest payload fits");
    pair.run(t(1));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Payload(largest)]);
}

#[test]
fn frames_cut_into_single_bytes_still_arrive() {
    let devices = Devices::new();
    let mut pair = MemoryPair::new(devices.config_for(&devices.clinician), devices.pump_config(), t(0));
    let one_byte_at_a_time = |_: Direction, frame: Vec<u8>| frame.iter().map(|&byte| vec![byte]).collect();
    pair.run_with(t(0), one_byte_at_a_time);
    pair.initiator.send(b"bolus?", t(1)).expect("established");
    pair.run_with(t(1), one_byte_at_a_time);
    let events = drain_events(&mut pair.responder);
    assert!(matches!(events[0], Event::Established { .. }));
    assert_eq!(events[1], Event::Payload(b"bolus?".to_vec()));
}

#[test]
fn unknown_initiator_key_is_refused() {
    let devices = Devices::new();
    let mut pair = MemoryPair::new(devices.config_for(&devices.stranger), devices.pump_config(), t(0));
    let mut to_initiator = 0;
    pair.run_with(t(0), |direction, frame| {
        if direction == Direction::ToInitiator {
            to_initiator += 1;
        }
        vec![frame]
    });
    // The pump answered the hello and then said nothing.
    assert_eq!(to_initiator, 1);
    let pump_events = drain_events(&mut pair.responder);
    assert_eq!(pump_events, vec![Event::Closed(CloseReason::UnknownPeer(devices.stranger.public()))]);
    let stranger_events = drain_events(&mut pair.initiator);
    assert!(stranger_events.is_empty(), "{stranger_events:?}");
    pair.handle_timeout(t(30_000));
    assert_eq!(drain_events(&mut pair.initiator), vec![Event::Closed(CloseReason::HandshakeTimeout)]);
}

#[test]
fn removed_key_is_refused_like_a_stranger() {
    let devices = Devices::new();
    let mut pump = devices.pump_config();
    assert_eq!(pump.trusted.remove(&devices.patient.public()), Some(Role::Patient));
    let mut pair = MemoryPair::new(devices.config_for(&devices.patient), pump, t(0));
    pair.run(t(0));
    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Closed(CloseReason::UnknownPeer(devices.patient.public()))]
    );
}

#[test]
fn wrong_pump_key_fails_the_handshake() {
    let devices = Devices::new();
    let mut config = devices.config_for(&devices.clinician);
    config.pump_key = devices.stranger.public();
    let mut pair = MemoryPair::new(config, devices.pump_config(), t(0));
    pair.run(t(0));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::HandshakeFailed)]);
    assert!(drain_events(&mut pair.initiator).is_empty());
    assert!(!pair.initiator.is_established());
    pair.handle_timeout(t(30_000));
    assert_eq!(drain_events(&mut pair.initiator), vec![Event::Closed(CloseReason::HandshakeTimeout)]);
}

#[test]
fn replayed_frame_closes_without_delivering_twice() {
    let mut pair = Devices::new().established_clinician();
    pair.initiator.send(b"bolus 50 micrograms", t(1)).expect("established");
    let frame = pair.initiator.poll_transmit().expect("one frame");
    pair.responder.receive(&frame, t(2)).expect("first copy is fine");
    assert_eq!(pair.responder.receive(&frame, t(3)), Err(ChannelError::Closed(CloseReason::Tampered)));
    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Payload(b"bolus 50 micrograms".to_vec()), Event::Closed(CloseReason::Tampered)]
    );
}

#[test]
fn tampered_frame_closes_without_delivering() {
    let devices = Devices::new();
    // Flip one bit in the first ciphertext byte, a middle byte, and the last byte (the tag).
    for position in [2, 8, 2 + 9 + 16 - 1] {
        let mut pair = devices.established_clinician();
        pair.initiator.send(b"stop pump", t(1)).expect("established");
        let mut frame = pair.initiator.poll_transmit().expect("one frame");
        assert_eq!(frame.len(), 2 + 9 + 16);
        frame[position] ^= 0x01;
        assert_eq!(pair.responder.receive(&frame, t(2)), Err(ChannelError::Closed(CloseReason::Tampered)));
        assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::Tampered)], "byte {position}");
    }
}

#[test]
fn reordered_frames_close_without_delivering() {
    let mut pair = Devices::new().established_clinician();
    pair.initiator.send(b"first", t(1)).expect("established");
    pair.initiator.send(b"second", t(1)).expect("established");
    let first = pair.initiator.poll_transmit().expect("first frame");
    let second = pair.initiator.poll_transmit().expect("second frame");
    assert_eq!(pair.responder.receive(&second, t(2)), Err(ChannelError::Closed(CloseReason::Tampered)));
    assert_eq!(pair.responder.receive(&first, t(2)), Err(ChannelError::Closed(CloseReason::Tampered)));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::Tampered)]);
}

#[test]
fn dropped_frame_then_the_next_one_closes() {
    let mut pair = Devices::new().established_clinician();
    pair.initiator.send(b"lost", t(1)).expect("established");
    pair.initiator.send(b"after the loss", t(1)).expect("established");
    let mut index = 0;
    pair.run_with(t(2), |_, frame| {
        index += 1;
        if index == 1 { vec![] } else { vec![frame] }
    });
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::Tampered)]);
}

#[test]
fn frame_from_another_session_is_refused() {
    let devices = Devices::new();
    let mut old = devices.established_clinician();
    let mut new = devices.established_clinician();
    old.initiator.send(b"from an old session", t(1)).expect("established");
    let frame = old.initiator.poll_transmit().expect("one frame");
    assert_eq!(new.responder.receive(&frame, t(2)), Err(ChannelError::Closed(CloseReason::Tampered)));
    assert!(!delivered_anything(&drain_events(&mut new.responder)));
}

#[test]
fn replayed_handshake_is_never_established() {
    let devices = Devices::new();
    // Record everything a clinician's programmer sent in a whole session.
    let mut pair = MemoryPair::new(devices.config_for(&devices.clinician), devices.pump_config(), t(0));
    let mut recorded = Vec::new();
    pair.run_with(t(0), |direction, frame| {
        if direction == Direction::ToResponder {
            recorded.push(frame.clone());
        }
        vec![frame]
    });
    pair.initiator.send(b"bolus", t(1)).expect("established");
    recorded.extend(take_transmits(&mut pair.initiator));
    assert_eq!(recorded.len(), 4, "hello, message 1, confirmation, payload");

    // Replay it to the pump later: message 1 alone is accepted by Noise IK, but the
    // confirmation was made under the old session's keys.
    let mut pump = Session::responder(devices.pump_config(), t(100_000));
    for frame in &recorded {
        let _closed = pump.receive(frame, t(100_001));
    }
    let events = drain_events(&mut pump);
    assert_eq!(events, vec![Event::Closed(CloseReason::HandshakeFailed)]);

    // Replaying only the hello and message 1 leaves the pump waiting, then timing out.
    let mut pump = Session::responder(devices.pump_config(), t(0));
    for frame in &recorded[..2] {
        pump.receive(frame, t(1)).expect("hello and message 1 are well formed");
    }
    assert_eq!(pump.phase(), Phase::Handshake);
    pump.handle_timeout(t(30_000));
    assert_eq!(drain_events(&mut pump), vec![Event::Closed(CloseReason::HandshakeTimeout)]);
}

#[test]
fn highest_common_version_is_agreed() {
    let devices = Devices::new();
    let mut programmer = devices.config_for(&devices.clinician);
    programmer.versions = versions(&[1, 2, 3]);
    let mut pump = devices.pump_config();
    pump.versions = versions(&[2, 3, 4]);
    let mut pair = MemoryPair::new(programmer, pump, t(0));
    pair.run(t(0));
    assert!(matches!(drain_events(&mut pair.responder).as_slice(), [Event::Established { version: 3, .. }]));
    assert!(matches!(drain_events(&mut pair.initiator).as_slice(), [Event::Established { version: 3, .. }]));
}

#[test]
fn unsupported_version_is_refused_on_both_sides() {
    let devices = Devices::new();
    let mut programmer = devices.config_for(&devices.clinician);
    programmer.versions = versions(&[3]);
    let mut pair = MemoryPair::new(programmer, devices.pump_config(), t(0));
    pair.run(t(0));
    assert_eq!(
        drain_events(&mut pair.responder),
        vec![Event::Closed(CloseReason::UnsupportedVersion { local: versions(&[2]), peer: versions(&[3]) })]
    );
    assert_eq!(
        drain_events(&mut pair.initiator),
        vec![Event::Closed(CloseReason::UnsupportedVersion { local: versions(&[3]), peer: versions(&[2]) })]
    );
}

/// A man-in-the-middle rewrites one hello; the handshake must then fail and nothing be
/// established on either side.
fn assert_rewritten_hello_breaks_the_handshake(direction_to_rewrite: Direction, rewritten: Vec<u8>) {
    let devices = Devices::new();
    let mut programmer = devices.config_for(&devices.clinician);
    programmer.versions = versions(&[1, 2]);
    let mut pump = devices.pump_config();
    pump.versions = versions(&[1, 2]);
    let mut pair = MemoryPair::new(programmer, pump, t(0));
    let mut rewrote = false;
    pair.run_with(t(0), |direction, frame| {
        if direction == direction_to_rewrite && !rewrote {
            rewrote = true;
            vec![encode_frame(&rewritten).expect("small frame")]
        } else {
            vec![frame]
        }
    });
    assert!(rewrote);
    let pump_events = drain_events(&mut pair.responder);
    let programmer_events = drain_events(&mut pair.initiator);
    assert!(!delivered_anything(&pump_events), "{pump_events:?}");
    assert!(!delivered_anything(&programmer_events), "{programmer_events:?}");
    assert_eq!(closed_with(&pump_events), Some(&CloseReason::HandshakeFailed));
}

#[test]
fn downgraded_offer_breaks_the_handshake() {
    // The programmer offered 1 and 2; the pump is shown an offer of 1 alone.
    assert_rewritten_hello_breaks_the_handshake(Direction::ToResponder, hello::encode_offer(&versions(&[1])));
}

#[test]
fn downgraded_answer_breaks_the_handshake() {
    // The pump chose 2; the programmer is shown a choice of 1.
    assert_rewritten_hello_breaks_the_handshake(Direction::ToInitiator, hello::encode_answer(&HelloAnswer::Accept(1)));
}

#[test]
fn refusal_listing_the_most_versions_reaches_the_initiator() {
    let devices = Devices::new();
    let mut programmer = devices.config_for(&devices.clinician);
    programmer.versions = versions(&[200]);
    let mut pump = devices.pump_config();
    let sixteen: Vec<u8> = (1..=16).collect();
    pump.versions = versions(&sixteen);
    let mut pair = MemoryPair::new(programmer, pump, t(0));
    pair.run(t(0));
    assert_eq!(
        drain_events(&mut pair.initiator),
        vec![Event::Closed(CloseReason::UnsupportedVersion { local: versions(&[200]), peer: versions(&sixteen) })]
    );
}

#[test]
fn answer_choosing_a_version_not_offered_is_refused() {
    let devices = Devices::new();
    let mut programmer = Session::initiator(devices.config_for(&devices.clinician), t(0));
    let answer = encode_frame(&hello::encode_answer(&HelloAnswer::Accept(9))).expect("small frame");
    assert!(matches!(programmer.receive(&answer, t(1)), Err(ChannelError::Closed(CloseReason::ProtocolViolation(_)))));
}

#[test]
fn not_itb_hello_is_refused() {
    let devices = Devices::new();
    let mut pump = Session::responder(devices.pump_config(), t(0));
    let frame = encode_frame(b"GET / HTTP/1.1").expect("small frame");
    assert_eq!(pump.receive(&frame, t(1)), Err(ChannelError::Closed(CloseReason::BadHello(hello::HelloError::NotItb))));
    assert!(pump.poll_transmit().is_none(), "nothing is answered to a stranger's protocol");
}

#[test]
fn handshake_message_with_payload_is_refused() {
    // A hand-built initiator that puts data in Noise message 1 (0-RTT, which could be replayed).
    let devices = Devices::new();
    let mut pump = Session::responder(devices.pump_config(), t(0));
    let offer = hello::encode_offer(&VersionSet::CURRENT);
    pump.receive(&encode_frame(&offer).expect("small"), t(0)).expect("valid offer");
    let answer_frame = pump.poll_transmit().expect("answer");
    let prologue = hello::prologue(&offer, &answer_frame[2..]);
    let params = itb_link::channel::NOISE_PATTERN.parse().expect("pattern");
    let pump_key = devices.pump.public();
    let mut noise = snow::Builder::new(params)
        .local_private_key(devices.clinician.private_bytes())
        .and_then(|builder| builder.remote_public_key(pump_key.as_bytes()))
        .and_then(|builder| builder.prologue(&prologue))
        .and_then(snow::Builder::build_initiator)
        .expect("initiator");
    let mut message = [0_u8; 128];
    let len = noise.write_message(b"bolus", &mut message).expect("message 1");
    let result = pump.receive(&encode_frame(&message[..len]).expect("small"), t(1));
    assert!(matches!(result, Err(ChannelError::Closed(CloseReason::ProtocolViolation(_)))), "{result:?}");
    assert!(!delivered_anything(&drain_events(&mut pump)));
}

#[test]
fn oversize_declared_length_is_refused_in_each_phase() {
    let devices = Devices::new();
    // Hello phase: the largest hello is 21 bytes.
    let mut pump = Session::responder(devices.pump_config(), t(0));
    assert_eq!(
        pump.receive(&[0xff, 0xff], t(1)),
        Err(ChannelError::Closed(CloseReason::Frame(FrameError::TooLong { len: 65_535, max_len: HELLO_MAX_LEN })))
    );

    // Handshake phase: message 1 is 96 bytes.
    let mut pump = Session::responder(devices.pump_config(), t(0));
    let offer = encode_frame(&hello::encode_offer(&VersionSet::CURRENT)).expect("small");
    pump.receive(&offer, t(1)).expect("valid offer");
    let declared = u16::try_from(HANDSHAKE_FRAME_MAX_LEN + 1).expect("small").to_be_bytes();
    assert_eq!(
        pump.receive(&declared, t(2)),
        Err(ChannelError::Closed(CloseReason::Frame(FrameError::TooLong {
            len: HANDSHAKE_FRAME_MAX_LEN + 1,
            max_len: HANDSHAKE_FRAME_MAX_LEN
        })))
    );

    // A zero length, at any point.
    let mut pair = devices.established_clinician();
    assert_eq!(pair.responder.receive(&[0, 0], t(1)), Err(ChannelError::Closed(CloseReason::Frame(FrameError::Empty))));
    assert!(!delivered_anything(&drain_events(&mut pair.responder)));
}

#[test]
fn handshake_timeout_closes_a_silent_session() {
    let devices = Devices::new();
    let mut pump = Session::responder(devices.pump_config(), t(1_000));
    assert_eq!(pump.poll_timeout(), Some(t(31_000)));
    // A byte at a time does not keep a handshake alive.
    pump.receive(&[0], t(20_000)).expect("part of a length");
    pump.handle_timeout(t(30_999));
    assert!(!pump.is_closed());
    pump.handle_timeout(t(31_000));
    assert_eq!(drain_events(&mut pump), vec![Event::Closed(CloseReason::HandshakeTimeout)]);
    assert_eq!(pump.poll_timeout(), None);
}

#[test]
fn idle_timeout_closes_an_established_session() {
    let mut pair = Devices::new().established_clinician();
    assert_eq!(pair.responder.poll_timeout(), Some(t(120_000)));
    // An authenticated frame restarts the idle time.
    pair.initiator.send(b"still here", t(100_000)).expect("established");
    pair.run(t(100_000));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Payload(b"still here".to_vec())]);
    assert_eq!(pair.responder.poll_timeout(), Some(t(220_000)));
    pair.handle_timeout(t(219_999));
    assert!(pair.responder.is_established());
    pair.handle_timeout(t(220_000));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::IdleTimeout)]);
    assert_eq!(drain_events(&mut pair.initiator), vec![Event::Closed(CloseReason::IdleTimeout)]);
}

#[test]
fn input_after_the_deadline_is_refused_even_without_a_timer_call() {
    let mut pair = Devices::new().established_clinician();
    pair.initiator.send(b"late", t(1)).expect("established");
    let frame = pair.initiator.poll_transmit().expect("frame");
    assert_eq!(pair.responder.receive(&frame, t(120_000)), Err(ChannelError::Closed(CloseReason::IdleTimeout)));
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::IdleTimeout)]);
}

#[test]
fn closed_session_refuses_everything() {
    let mut pair = Devices::new().established_clinician();
    pair.responder.close();
    pair.responder.close();
    assert_eq!(drain_events(&mut pair.responder), vec![Event::Closed(CloseReason::Local)]);
    pair.initiator.send(b"after close", t(1)).expect("the initiator does not know yet");
    let frame = pair.initiator.poll_transmit().expect("frame");
    assert_eq!(pair.responder.receive(&frame, t(1)), Err(ChannelError::Closed(CloseReason::Local)));
    assert_eq!(pair.responder.send(b"x", t(1)), Err(ChannelError::Closed(CloseReason::Local)));
    assert!(drain_events(&mut pair.responder).is_empty(), "closed is reported once, nothing after");
}

#[test]
fn send_before_established_is_refused_without_closing() {
    let devices = Devices::new();
    let mut programmer = Session::initiator(devices.config_for(&devices.clinician), t(0));
    assert_eq!(programmer.send(b"too early", t(0)), Err(ChannelError::NotEstablished));
    assert_eq!(programmer.phase(), Phase::Hello);
}

#[test]
fn unread_events_past_the_bound_close_as_overloaded() {
    let mut pair = Devices::new().established_clinician();
    for index in 0..MAX_QUEUED + 5 {
        // The programmer may already be closed by the last rounds; its errors do not matter.
        let _sent = pair.initiator.send(&[u8::try_from(index % 256).expect("small")], t(1));
        pair.run(t(1));
    }
    let events = drain_events(&mut pair.responder);
    assert_eq!(events.len(), MAX_QUEUED + 1);
    assert!(events[..MAX_QUEUED].iter().all(|event| matches!(event, Event::Payload(_))));
    assert_eq!(closed_with(&events), Some(&CloseReason::Overloaded));
}

#[test]
fn unsent_transmits_past_the_bound_close_as_overloaded() {
    let mut pair = Devices::new().established_clinician();
    for _ in 0..MAX_QUEUED {
        pair.initiator.send(b"queued", t(1)).expect("room in the queue");
    }
    assert_eq!(pair.initiator.send(b"one too many", t(1)), Err(ChannelError::Closed(CloseReason::Overloaded)));
    assert_eq!(drain_events(&mut pair.initiator), vec![Event::Closed(CloseReason::Overloaded)]);
}
