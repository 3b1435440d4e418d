use super::*;
use crate::phase::ALL_PHASES;
use Phase::*;

const NONE: Intents = Intents {
    quiesce: false,
    resume: false,
    shutdown: None,
    force: false,
    restart: false,
};
const TERM: Option<ShutdownCause> = Some(ShutdownCause::Signal(15));

#[test]
fn next_step_table() {
    let quiesce = Intents {
        quiesce: true,
        ..NONE
    };
    let resume = Intents {
        resume: true,
        ..NONE
    };
    let restart = Intents {
        restart: true,
        ..NONE
    };
    let all = Intents {
        quiesce: true,
        resume: true,
        shutdown: TERM,
        force: false,
        restart: true,
    };
    let rows = [
        (Running, NONE, Step::Wait),
        (Running, quiesce, Step::Quiesce),
        (Starting, quiesce, Step::Quiesce),
        (Quiesced, quiesce, Step::Wait),
        (Quiesced, resume, Step::Resume),
        (Running, resume, Step::Wait),
        (Quiesced, all, Step::Shutdown),
        (Running, all, Step::Shutdown),
        (Running, restart, Step::Restart),
        (Starting, restart, Step::Wait),
        (Quiesced, restart, Step::Wait),
        (
            Running,
            Intents {
                quiesce: true,
                ..restart
            },
            Step::Quiesce,
        ),
    ];
    for (phase, intents, step) in rows {
        assert_eq!(next_step(phase, &intents), step, "{phase} {intents:?}");
    }
}

#[test]
fn quiesce_request_table() {
    use QuiesceDecision::*;
    let asked = Intents {
        quiesce: true,
        ..NONE
    };
    let resume = Intents {
        resume: true,
        ..NONE
    };
    let shutdown = Intents {
        shutdown: TERM,
        ..NONE
    };
    let rows = [
        (Running, NONE, Begin),
        (Starting, NONE, AfterScriptInFlight),
        (Starting, asked, JoinRunning),
        (Quiescing, NONE, JoinRunning),
        (Quiesced, NONE, AlreadyQuiesced),
        (Quiesced, resume, Refuse(Refusal::ResumeQueued)),
        (Running, shutdown, Refuse(Refusal::ShuttingDown)),
        (ShuttingDown, NONE, Refuse(Refusal::ShuttingDown)),
    ];
    for (phase, intents, decision) in rows {
        assert_eq!(
            quiesce_request(phase, &intents),
            decision,
            "{phase} {intents:?}"
        );
    }
}

#[test]
fn only_a_new_quiesce_is_recorded_as_asked_for() {
    use QuiesceDecision::*;
    for decision in [Begin, AfterScriptInFlight] {
        assert!(decision.asks_for_quiesce(), "{decision:?}");
    }
    for decision in [JoinRunning, AlreadyQuiesced, Refuse(Refusal::ShuttingDown)] {
        assert!(!decision.asks_for_quiesce(), "{decision:?}");
    }
    // Joining the running quiesce leaves nothing asked for after it.
    assert!(!quiesce_request(Quiescing, &NONE).asks_for_quiesce());
}

#[test]
fn resume_only_from_quiesced_and_never_during_shutdown() {
    for phase in ALL_PHASES {
        let expected = match phase {
            Quiesced | Quiescing => Ok(()),
            ShuttingDown => Err(Refusal::ShuttingDown),
            other => Err(Refusal::NothingToResume(other)),
        };
        assert_eq!(resume_request(phase, &NONE), expected, "{phase}");
    }
    let shutdown = Intents {
        shutdown: TERM,
        ..NONE
    };
    assert_eq!(
        resume_request(Quiesced, &shutdown),
        Err(Refusal::ShuttingDown)
    );
    // A quiesce asked for and not begun yet: the resume follows it.
    let quiesce = Intents {
        quiesce: true,
        ..NONE
    };
    assert_eq!(resume_request(Starting, &quiesce), Ok(()));
    assert_eq!(resume_request(Running, &quiesce), Ok(()));
}

#[test]
fn who_owns_shutdown() {
    use ShutdownDecision::*;
    let asked = Intents {
        shutdown: TERM,
        ..NONE
    };
    let forced = Intents {
        force: true,
        ..asked
    };
    // (phase, intents, main running, stops left) -> decision
    let rows = [
        // No main command: the first begins, the second forces, then nothing.
        (Running, NONE, false, 2, Begin),
        (Running, NONE, false, 0, Begin),
        (Quiesced, NONE, false, 0, Begin),
        (Running, asked, false, 2, Force),
        (ShuttingDown, NONE, false, 1, Force),
        (ShuttingDown, forced, false, 1, Nothing),
        // A main command and nothing left to stop: like tini, it decides.
        (Running, NONE, true, 0, LeaveToMain),
        (Quiesced, NONE, true, 0, LeaveToMain),
        (ShuttingDown, asked, true, 0, LeaveToMain),
        // A main command and scripts to stop: the graceful sequence, and
        // while the main command still runs, later signals are its own.
        (Running, NONE, true, 3, Begin),
        (Running, asked, true, 3, LeaveToMain),
        (ShuttingDown, asked, true, 3, LeaveToMain),
    ];
    for (phase, intents, main, stops, decision) in rows {
        assert_eq!(
            shutdown_request(phase, &intents, main, stops),
            decision,
            "{phase} {intents:?} main={main} stops={stops}"
        );
    }
}

#[test]
fn signal_roles() {
    let defaults = SignalRoles::default();
    let usr1 = Signal::SIGUSR1 as i32;
    let usr2 = Signal::SIGUSR2 as i32;
    let hup = Signal::SIGHUP as i32;
    assert_eq!(signal_role(usr1, &defaults), SignalRole::Quiesce);
    assert_eq!(signal_role(usr2, &defaults), SignalRole::Resume);
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        assert_eq!(signal_role(signal as i32, &defaults), SignalRole::Shutdown);
    }
    assert_eq!(signal_role(hup, &defaults), SignalRole::None);
    assert_eq!(signal_role(libc::SIGRTMIN(), &defaults), SignalRole::None);
    let moved = SignalRoles {
        quiesce: Some(hup),
        resume: None,
    };
    assert_eq!(signal_role(hup, &moved), SignalRole::Quiesce);
    assert_eq!(signal_role(usr1, &moved), SignalRole::None);
    assert_eq!(signal_role(usr2, &moved), SignalRole::None);
}

#[test]
fn interruption_escalates_and_never_repeats() {
    let shutdown = Intents {
        shutdown: TERM,
        ..NONE
    };
    let forced = Intents {
        force: true,
        ..shutdown
    };
    let term = Some(Signal::SIGTERM);
    let kill = Some(Signal::SIGKILL);
    let rows = [
        (Action::Start, NONE, None, None),
        (Action::Start, shutdown, None, term),
        (Action::Start, shutdown, term, None),
        (Action::Stop, shutdown, None, None),
        (Action::Start, forced, term, kill),
        (Action::Stop, forced, None, kill),
        (Action::Stop, forced, kill, None),
    ];
    for (action, intents, sent, wanted) in rows {
        assert_eq!(
            interruption(action, &intents, sent),
            wanted,
            "{action:?} {intents:?} {sent:?}"
        );
    }
}

#[test]
fn exit_codes() {
    use ShutdownCause::*;
    assert_eq!(exit_code(Some(7), Signal(15), true), 7);
    assert_eq!(exit_code(Some(0), StartFailed, false), 0);
    assert_eq!(exit_code(None, StartFailed, true), EXIT_START_FAILED);
    assert_eq!(exit_code(None, Signal(15), true), EXIT_STOP_FAILED);
    assert_eq!(exit_code(None, Signal(15), false), 0);
    assert_eq!(exit_code(None, MainExited, false), 0);
    assert_eq!(
        exit_code(Some(143), DaemonExited, false),
        EXIT_DAEMON_EXITED
    );
    assert_eq!(exit_code(None, DaemonExited, true), EXIT_DAEMON_EXITED);
}
