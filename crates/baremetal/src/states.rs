//! Ironic's provision state machine, as data: the states (with Ironic's exact names), the
//! events that move between them, the target each transient state heads for, and the verbs the
//! API accepts. Pure, no I/O: the API asks [`next`] whether a verb is legal from a state, the
//! conductor asks it where an outcome (`done`, `fail`) leads. The table is Ironic's
//! (`ironic/common/state_machine.py`); `docs/baremetal.md` draws it.
//!
//! Power states (`power on`, `power off`, …) are in [`power`].

/// Provision states.
pub const ENROLL: &str = "enroll";
pub const VERIFYING: &str = "verifying";
pub const MANAGEABLE: &str = "manageable";
pub const AVAILABLE: &str = "available";
pub const ACTIVE: &str = "active";
pub const DEPLOYING: &str = "deploying";
pub const DEPLOYWAIT: &str = "wait call-back";
pub const DEPLOYFAIL: &str = "deploy failed";
pub const DEPLOYHOLD: &str = "deploy hold";
pub const DELETING: &str = "deleting";
pub const CLEANING: &str = "cleaning";
pub const CLEANWAIT: &str = "clean wait";
pub const CLEANFAIL: &str = "clean failed";
pub const CLEANHOLD: &str = "clean hold";
pub const ERROR: &str = "error";
pub const INSPECTING: &str = "inspecting";
pub const INSPECTWAIT: &str = "inspect wait";
pub const INSPECTFAIL: &str = "inspect failed";
pub const ADOPTING: &str = "adopting";
pub const ADOPTFAIL: &str = "adopt failed";
pub const RESCUE: &str = "rescue";
pub const RESCUING: &str = "rescuing";
pub const RESCUEWAIT: &str = "rescue wait";
pub const RESCUEFAIL: &str = "rescue failed";
pub const UNRESCUING: &str = "unrescuing";
pub const UNRESCUEFAIL: &str = "unrescue failed";
pub const SERVICING: &str = "servicing";
pub const SERVICEWAIT: &str = "service wait";
pub const SERVICEFAIL: &str = "service failed";
pub const SERVICEHOLD: &str = "service hold";

/// Every provision state a node can be in.
pub const ALL: &[&str] = &[
    ENROLL,
    VERIFYING,
    MANAGEABLE,
    AVAILABLE,
    ACTIVE,
    DEPLOYING,
    DEPLOYWAIT,
    DEPLOYFAIL,
    DEPLOYHOLD,
    DELETING,
    CLEANING,
    CLEANWAIT,
    CLEANFAIL,
    CLEANHOLD,
    ERROR,
    INSPECTING,
    INSPECTWAIT,
    INSPECTFAIL,
    ADOPTING,
    ADOPTFAIL,
    RESCUE,
    RESCUING,
    RESCUEWAIT,
    RESCUEFAIL,
    UNRESCUING,
    UNRESCUEFAIL,
    SERVICING,
    SERVICEWAIT,
    SERVICEFAIL,
    SERVICEHOLD,
];

/// States a node rests in (the others are on their way somewhere).
pub const STABLE: &[&str] = &[ENROLL, MANAGEABLE, AVAILABLE, ACTIVE, ERROR, RESCUE];

/// States in which a node may be updated while a transition is in progress (Ironic's
/// `UPDATE_ALLOWED_STATES`).
pub const UPDATE_ALLOWED: &[&str] = &[
    DEPLOYFAIL,
    INSPECTING,
    INSPECTFAIL,
    INSPECTWAIT,
    CLEANFAIL,
    ERROR,
    VERIFYING,
    ADOPTFAIL,
    RESCUEFAIL,
    UNRESCUEFAIL,
    "service",
    SERVICEHOLD,
    SERVICEFAIL,
];

/// States a node may be deleted in without maintenance (Ironic's `DELETE_ALLOWED_STATES`
/// plus `available`, as `allow_deleting_available_nodes` defaults).
pub const DELETE_ALLOWED: &[&str] = &[MANAGEABLE, ENROLL, ADOPTFAIL, AVAILABLE];

/// States the power-state sync leaves alone (Ironic's `SYNC_EXCLUDED_STATES`).
pub const SYNC_EXCLUDED: &[&str] = &[DEPLOYWAIT, CLEANWAIT, ENROLL, ADOPTFAIL];

/// States in which a ramdisk may look its node up (Ironic's `LOOKUP_ALLOWED_STATES`).
pub const LOOKUP_ALLOWED: &[&str] = &[
    DEPLOYING,
    DEPLOYWAIT,
    CLEANING,
    CLEANWAIT,
    INSPECTING,
    INSPECTWAIT,
    RESCUING,
    RESCUEWAIT,
    SERVICEWAIT,
];

/// The same with fast track on (Ironic's `FASTTRACK_LOOKUP_ALLOWED_STATES`).
pub const FASTTRACK_LOOKUP_ALLOWED: &[&str] = &[
    ENROLL,
    MANAGEABLE,
    AVAILABLE,
    DEPLOYING,
    DEPLOYWAIT,
    CLEANING,
    CLEANWAIT,
    INSPECTING,
    INSPECTWAIT,
    RESCUING,
    RESCUEWAIT,
    SERVICING,
    SERVICEWAIT,
    SERVICEHOLD,
];

/// `(from, event, to)`: every transition of Ironic's machine.
pub const TRANSITIONS: &[(&str, &str, &str)] = &[
    (AVAILABLE, "deploy", DEPLOYING),
    (DEPLOYING, "fail", DEPLOYFAIL),
    (DEPLOYFAIL, "rebuild", DEPLOYING),
    (DEPLOYFAIL, "deploy", DEPLOYING),
    (DEPLOYING, "wait", DEPLOYWAIT),
    (DEPLOYING, "hold", DEPLOYHOLD),
    (DEPLOYWAIT, "hold", DEPLOYHOLD),
    (DEPLOYWAIT, "resume", DEPLOYING),
    (DEPLOYWAIT, "fail", DEPLOYFAIL),
    (DEPLOYHOLD, "unhold", DEPLOYWAIT),
    (DEPLOYHOLD, "abort", DEPLOYFAIL),
    (DEPLOYWAIT, "abort", DEPLOYFAIL),
    (DEPLOYING, "done", ACTIVE),
    (ACTIVE, "rebuild", DEPLOYING),
    (ACTIVE, "delete", DELETING),
    (DEPLOYWAIT, "delete", DELETING),
    (DEPLOYFAIL, "delete", DELETING),
    (DELETING, "fail", ERROR),
    (DELETING, "clean", CLEANING),
    (CLEANING, "done", AVAILABLE),
    (CLEANING, "fail", CLEANFAIL),
    (CLEANWAIT, "fail", CLEANFAIL),
    (CLEANWAIT, "abort", CLEANFAIL),
    (CLEANING, "wait", CLEANWAIT),
    (CLEANING, "hold", CLEANHOLD),
    (CLEANWAIT, "hold", CLEANHOLD),
    (CLEANWAIT, "resume", CLEANING),
    (CLEANHOLD, "abort", CLEANFAIL),
    (CLEANHOLD, "unhold", CLEANWAIT),
    (CLEANFAIL, "manage", MANAGEABLE),
    (MANAGEABLE, "provide", CLEANING),
    (MANAGEABLE, "clean", CLEANING),
    (CLEANING, "manage", MANAGEABLE),
    (AVAILABLE, "manage", MANAGEABLE),
    (ERROR, "rebuild", DEPLOYING),
    (ERROR, "delete", DELETING),
    (MANAGEABLE, "inspect", INSPECTING),
    (INSPECTING, "done", MANAGEABLE),
    (INSPECTING, "fail", INSPECTFAIL),
    (INSPECTING, "wait", INSPECTWAIT),
    (INSPECTWAIT, "done", MANAGEABLE),
    (INSPECTWAIT, "fail", INSPECTFAIL),
    (INSPECTWAIT, "abort", INSPECTFAIL),
    (INSPECTWAIT, "resume", INSPECTING),
    (INSPECTFAIL, "manage", MANAGEABLE),
    (INSPECTFAIL, "inspect", INSPECTING),
    (ACTIVE, "rescue", RESCUING),
    (RESCUING, "done", RESCUE),
    (RESCUING, "wait", RESCUEWAIT),
    (RESCUEWAIT, "resume", RESCUING),
    (RESCUE, "rescue", RESCUING),
    (RESCUE, "delete", DELETING),
    (RESCUEWAIT, "fail", RESCUEFAIL),
    (RESCUING, "fail", RESCUEFAIL),
    (RESCUEWAIT, "abort", RESCUEFAIL),
    (RESCUEFAIL, "rescue", RESCUING),
    (RESCUEFAIL, "unrescue", UNRESCUING),
    (RESCUEFAIL, "delete", DELETING),
    (RESCUEWAIT, "delete", DELETING),
    (RESCUE, "unrescue", UNRESCUING),
    (UNRESCUING, "done", ACTIVE),
    (UNRESCUING, "fail", UNRESCUEFAIL),
    (UNRESCUEFAIL, "rescue", RESCUING),
    (UNRESCUEFAIL, "unrescue", UNRESCUING),
    (UNRESCUEFAIL, "delete", DELETING),
    (ENROLL, "manage", VERIFYING),
    (VERIFYING, "done", MANAGEABLE),
    (VERIFYING, "fail", ENROLL),
    (MANAGEABLE, "adopt", ADOPTING),
    (ADOPTING, "done", ACTIVE),
    (ADOPTING, "fail", ADOPTFAIL),
    (ADOPTFAIL, "adopt", ADOPTING),
    (ADOPTFAIL, "manage", MANAGEABLE),
    (SERVICING, "done", ACTIVE),
    (ACTIVE, "service", SERVICING),
    (SERVICING, "fail", SERVICEFAIL),
    (SERVICING, "wait", SERVICEWAIT),
    (SERVICING, "hold", SERVICEHOLD),
    (SERVICEWAIT, "hold", SERVICEHOLD),
    (SERVICEHOLD, "service", SERVICING),
    (SERVICEHOLD, "unhold", SERVICEWAIT),
    (SERVICEWAIT, "resume", SERVICING),
    (SERVICEWAIT, "fail", SERVICEFAIL),
    (SERVICEHOLD, "fail", SERVICEFAIL),
    (SERVICEWAIT, "abort", SERVICEFAIL),
    (SERVICEHOLD, "abort", SERVICEFAIL),
    (SERVICEFAIL, "service", SERVICING),
    (SERVICEFAIL, "rescue", RESCUING),
    (SERVICEFAIL, "wait", SERVICEWAIT),
    (SERVICEFAIL, "hold", SERVICEHOLD),
    (SERVICEFAIL, "delete", DELETING),
    (SERVICEFAIL, "abort", ACTIVE),
    (SERVICEWAIT, "delete", DELETING),
];

/// The state `event` leads to from `state`, if the event is legal there.
pub fn next(state: &str, event: &str) -> Option<&'static str> {
    TRANSITIONS
        .iter()
        .find(|(from, ev, _)| *from == state && *ev == event)
        .map(|(_, _, to)| *to)
}

/// The stable state a transient state heads for (`target_provision_state`), `None` for stable
/// states.
pub fn target_of(state: &str) -> Option<&'static str> {
    Some(match state {
        VERIFYING => MANAGEABLE,
        DEPLOYING | DEPLOYWAIT | DEPLOYFAIL | DEPLOYHOLD => ACTIVE,
        CLEANING | CLEANWAIT | CLEANFAIL | CLEANHOLD | DELETING => AVAILABLE,
        INSPECTING | INSPECTFAIL | INSPECTWAIT => MANAGEABLE,
        ADOPTING | ADOPTFAIL => ACTIVE,
        RESCUING | RESCUEWAIT | RESCUEFAIL => RESCUE,
        UNRESCUING | UNRESCUEFAIL => ACTIVE,
        SERVICING | SERVICEWAIT | SERVICEFAIL | SERVICEHOLD => ACTIVE,
        _ => return None,
    })
}

/// Whether `s` is one of Ironic's provision states.
pub fn is_state(s: &str) -> bool {
    ALL.contains(&s)
}

/// The event an API `target` stands for (Ironic's `VERBS`): `active` and `deploy` deploy,
/// `deleted` and `undeploy` delete; other targets are their own event.
pub fn event_of(target: &str) -> &str {
    match target {
        "active" | "deploy" => "deploy",
        "deleted" | "undeploy" => "delete",
        other => other,
    }
}

/// The API targets Ironic knows, with the minor version that introduced each (Ironic's
/// `MIN_VERB_VERSIONS`; `None`: available since 1.1).
pub const VERBS: &[(&str, Option<u32>)] = &[
    ("active", None),
    ("deploy", Some(73)),
    ("deleted", None),
    ("undeploy", Some(73)),
    ("manage", Some(4)),
    ("provide", Some(4)),
    ("inspect", Some(6)),
    ("abort", Some(13)),
    ("clean", Some(15)),
    ("adopt", Some(17)),
    ("rescue", Some(38)),
    ("unrescue", Some(38)),
    ("unhold", Some(85)),
    ("service", Some(87)),
    ("rebuild", None),
];

/// The minor version a verb needs (`None` when any version will do or the verb is unknown).
pub fn verb_min_version(target: &str) -> Option<u32> {
    VERBS
        .iter()
        .find(|(v, _)| *v == target)
        .and_then(|(_, min)| *min)
}

/// Power states (`power_state`, `target_power_state`) and the targets of
/// `PUT /states/power`.
pub mod power {
    pub const ON: &str = "power on";
    pub const OFF: &str = "power off";
    pub const REBOOT: &str = "rebooting";
    pub const SOFT_REBOOT: &str = "soft rebooting";
    pub const SOFT_OFF: &str = "soft power off";

    /// What `PUT /states/power` accepts.
    pub const TARGETS: &[&str] = &[ON, OFF, REBOOT, SOFT_REBOOT, SOFT_OFF];

    /// The power state an action ends in (`target_power_state` while it runs).
    pub fn settles_at(target: &str) -> &'static str {
        match target {
            ON | REBOOT | SOFT_REBOOT => ON,
            _ => OFF,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &[&str] = &[
        "deploy", "delete", "manage", "provide", "inspect", "abort", "clean", "adopt", "rescue",
        "unrescue", "unhold", "service", "rebuild", "done", "fail", "wait", "resume", "hold",
    ];

    #[test]
    fn every_transition_joins_known_states() {
        for (from, ev, to) in TRANSITIONS {
            assert!(is_state(from), "{from}");
            assert!(is_state(to), "{to}");
            assert!(EVENTS.contains(ev), "{ev}");
        }
        // No event is ambiguous from any state.
        for s in ALL {
            for ev in EVENTS {
                let n = TRANSITIONS
                    .iter()
                    .filter(|(f, e, _)| f == s && e == ev)
                    .count();
                assert!(n <= 1, "{s} --{ev}--> is ambiguous");
            }
        }
    }

    #[test]
    fn every_verb_from_every_state() {
        // The verbs' legal edges, written out from Ironic's machine; everything else is
        // illegal.
        let legal: &[(&str, &str, &str)] = &[
            (ENROLL, "manage", VERIFYING),
            (AVAILABLE, "manage", MANAGEABLE),
            (CLEANFAIL, "manage", MANAGEABLE),
            (INSPECTFAIL, "manage", MANAGEABLE),
            (ADOPTFAIL, "manage", MANAGEABLE),
            (CLEANING, "manage", MANAGEABLE),
            (MANAGEABLE, "provide", CLEANING),
            (MANAGEABLE, "inspect", INSPECTING),
            (INSPECTFAIL, "inspect", INSPECTING),
            (MANAGEABLE, "clean", CLEANING),
            // Ironic's machine has this internal edge; the API accepts the verb there too.
            (DELETING, "clean", CLEANING),
            (MANAGEABLE, "adopt", ADOPTING),
            (ADOPTFAIL, "adopt", ADOPTING),
            (AVAILABLE, "deploy", DEPLOYING),
            (DEPLOYFAIL, "deploy", DEPLOYING),
            (ACTIVE, "rebuild", DEPLOYING),
            (DEPLOYFAIL, "rebuild", DEPLOYING),
            (ERROR, "rebuild", DEPLOYING),
            (ACTIVE, "delete", DELETING),
            (DEPLOYWAIT, "delete", DELETING),
            (DEPLOYFAIL, "delete", DELETING),
            (ERROR, "delete", DELETING),
            (RESCUE, "delete", DELETING),
            (RESCUEFAIL, "delete", DELETING),
            (RESCUEWAIT, "delete", DELETING),
            (UNRESCUEFAIL, "delete", DELETING),
            (SERVICEFAIL, "delete", DELETING),
            (SERVICEWAIT, "delete", DELETING),
            (DEPLOYWAIT, "abort", DEPLOYFAIL),
            (DEPLOYHOLD, "abort", DEPLOYFAIL),
            (CLEANWAIT, "abort", CLEANFAIL),
            (CLEANHOLD, "abort", CLEANFAIL),
            (INSPECTWAIT, "abort", INSPECTFAIL),
            (RESCUEWAIT, "abort", RESCUEFAIL),
            (SERVICEWAIT, "abort", SERVICEFAIL),
            (SERVICEHOLD, "abort", SERVICEFAIL),
            (SERVICEFAIL, "abort", ACTIVE),
            (ACTIVE, "rescue", RESCUING),
            (RESCUE, "rescue", RESCUING),
            (RESCUEFAIL, "rescue", RESCUING),
            (UNRESCUEFAIL, "rescue", RESCUING),
            (SERVICEFAIL, "rescue", RESCUING),
            (RESCUE, "unrescue", UNRESCUING),
            (RESCUEFAIL, "unrescue", UNRESCUING),
            (UNRESCUEFAIL, "unrescue", UNRESCUING),
            (DEPLOYHOLD, "unhold", DEPLOYWAIT),
            (CLEANHOLD, "unhold", CLEANWAIT),
            (SERVICEHOLD, "unhold", SERVICEWAIT),
            (ACTIVE, "service", SERVICING),
            (SERVICEHOLD, "service", SERVICING),
            (SERVICEFAIL, "service", SERVICING),
        ];
        for (target, _) in VERBS {
            let ev = event_of(target);
            for s in ALL {
                let want = legal
                    .iter()
                    .find(|(f, e, _)| f == s && *e == ev)
                    .map(|(_, _, t)| *t);
                assert_eq!(next(s, ev), want, "{target} from {s}");
            }
        }
    }

    #[test]
    fn outcomes_of_the_conductor_steps() {
        assert_eq!(next(VERIFYING, "done"), Some(MANAGEABLE));
        assert_eq!(next(VERIFYING, "fail"), Some(ENROLL));
        assert_eq!(target_of(VERIFYING), Some(MANAGEABLE));
        assert_eq!(target_of(CLEANING), Some(AVAILABLE));
        for s in STABLE {
            assert_eq!(target_of(s), None, "{s}");
        }
    }

    #[test]
    fn verbs_and_their_versions() {
        assert_eq!(event_of("active"), "deploy");
        assert_eq!(event_of("undeploy"), "delete");
        assert_eq!(event_of("manage"), "manage");
        assert_eq!(verb_min_version("manage"), Some(4));
        assert_eq!(verb_min_version("active"), None);
        assert_eq!(verb_min_version("bogus"), None);
        assert_eq!(power::settles_at(power::REBOOT), power::ON);
        assert_eq!(power::settles_at(power::SOFT_OFF), power::OFF);
    }
}
