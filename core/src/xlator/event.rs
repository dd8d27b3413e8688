//! Graph events (`glusterfs_event_t`, translators.md §2.4) with upstream's numbering.

/// An event passed between translators by `notify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
#[allow(missing_docs)] // The names are upstream's GF_EVENT_* names.
pub enum Event {
    ParentUp = 1,
    PollIn = 2,
    PollOut = 3,
    PollErr = 4,
    ChildUp = 5,
    ChildDown = 6,
    ChildConnecting = 7,
    Cleanup = 9,
    TransportConnected = 10,
    VolfileModified = 11,
    GraphNew = 12,
    TranslatorInfo = 13,
    TranslatorOp = 14,
    AuthFailed = 15,
    VolumeDefrag = 16,
    ParentDown = 17,
    VolumeBarrierOp = 18,
    Upcall = 19,
    ScrubStatus = 20,
    SomeDescendentDown = 21,
    ScrubOndemand = 22,
    SomeDescendentUp = 23,
    ChildPing = 24,
    /// Only in GlusterFS after 10.x (where `MAXVAL` becomes 26).
    Sighup = 25,
}

impl Event {
    /// Every event, in value order.
    pub const ALL: [Event; 24] = [
        Event::ParentUp,
        Event::PollIn,
        Event::PollOut,
        Event::PollErr,
        Event::ChildUp,
        Event::ChildDown,
        Event::ChildConnecting,
        Event::Cleanup,
        Event::TransportConnected,
        Event::VolfileModified,
        Event::GraphNew,
        Event::TranslatorInfo,
        Event::TranslatorOp,
        Event::AuthFailed,
        Event::VolumeDefrag,
        Event::ParentDown,
        Event::VolumeBarrierOp,
        Event::Upcall,
        Event::ScrubStatus,
        Event::SomeDescendentDown,
        Event::ScrubOndemand,
        Event::SomeDescendentUp,
        Event::ChildPing,
        Event::Sighup,
    ];

    /// Upstream's name without the `GF_EVENT_` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Event::ParentUp => "PARENT_UP",
            Event::PollIn => "POLLIN",
            Event::PollOut => "POLLOUT",
            Event::PollErr => "POLLERR",
            Event::ChildUp => "CHILD_UP",
            Event::ChildDown => "CHILD_DOWN",
            Event::ChildConnecting => "CHILD_CONNECTING",
            Event::Cleanup => "CLEANUP",
            Event::TransportConnected => "TRANSPORT_CONNECTED",
            Event::VolfileModified => "VOLFILE_MODIFIED",
            Event::GraphNew => "GRAPH_NEW",
            Event::TranslatorInfo => "TRANSLATOR_INFO",
            Event::TranslatorOp => "TRANSLATOR_OP",
            Event::AuthFailed => "AUTH_FAILED",
            Event::VolumeDefrag => "VOLUME_DEFRAG",
            Event::ParentDown => "PARENT_DOWN",
            Event::VolumeBarrierOp => "VOLUME_BARRIER_OP",
            Event::Upcall => "UPCALL",
            Event::ScrubStatus => "SCRUB_STATUS",
            Event::SomeDescendentDown => "SOME_DESCENDENT_DOWN",
            Event::ScrubOndemand => "SCRUB_ONDEMAND",
            Event::SomeDescendentUp => "SOME_DESCENDENT_UP",
            Event::ChildPing => "CHILD_PING",
            Event::Sighup => "SIGHUP",
        }
    }

    /// The wire/ABI value.
    pub fn value(self) -> u8 {
        self as u8
    }

    /// The event with this value (8 is unused upstream).
    pub fn from_value(v: u8) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.value() == v)
    }

    /// Whether `default_notify` sends it towards the children (else towards the parents).
    pub fn goes_down(self) -> bool {
        matches!(
            self,
            Event::ParentUp | Event::ParentDown | Event::Cleanup | Event::Sighup
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_eight_is_a_hole() {
        for e in Event::ALL {
            assert_eq!(Event::from_value(e.value()), Some(e));
        }
        assert_eq!(Event::from_value(8), None);
        assert_eq!(Event::from_value(26), None);
        assert_eq!(Event::ChildUp.value(), 5);
        assert_eq!(Event::SomeDescendentUp.value(), 23);
        assert!(Event::ParentUp.goes_down() && !Event::ChildDown.goes_down());
    }
}
