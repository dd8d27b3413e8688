//! Call stacks and frames (translators.md §4): one stack per request (`call_stack_t`: the
//! request number, credentials, `err_xl`/`error`, the lent buffer), one frame per hop
//! (`call_frame_t`: parent, the translator executing it, cookie, `local`, latency stamps), all
//! in fixed arenas addressed by index and generation, so a stale reference (a late completion
//! for a destroyed stack) is refused instead of reaching a reused slot.

use super::args::{Reply, Request, Span};
use super::fop::Fop;

/// A frame: arena index plus the slot's generation when it was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameRef {
    pub(super) idx: u16,
    pub(super) gen: u32,
}

impl FrameRef {
    /// The default cookie STACK_WIND gives a callback: the child frame itself (§4).
    pub fn cookie(self) -> u64 {
        u64::from(self.gen) << 16 | u64::from(self.idx)
    }

    /// The frame a default cookie names.
    pub fn from_cookie(c: u64) -> FrameRef {
        FrameRef {
            idx: c as u16,
            gen: (c >> 16) as u32,
        }
    }

    /// The arena slot.
    pub fn index(self) -> usize {
        usize::from(self.idx)
    }
}

/// A call stack: arena index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StackRef {
    pub(super) idx: u16,
    pub(super) gen: u32,
}

/// Who asks (`call_stack_t`'s uid, gid, pid and lk_owner; the owner's bytes are in the
/// request buffer, up to 1024 of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Creds {
    /// uid
    pub uid: u32,
    /// gid
    pub gid: u32,
    /// pid
    pub pid: i32,
    /// lk_owner
    pub lk_owner: Span,
}

/// Where a frame is in its one life: called, running, unwinding, done.
#[derive(Clone, Copy, Debug)]
// Without an allocator nothing can be boxed: the variants stay inline.
#[allow(clippy::large_enum_variant)]
pub(super) enum State {
    Free,
    /// Waiting in the run queue for its translator's fop.
    Call(Request),
    /// Its translator has it: waiting on children, or parked until a completion.
    Running,
    /// Unwound; waiting in the run queue to reach the parent's callback.
    Unwind(Reply),
    /// Its callback ran; kept until STACK_DESTROY.
    Done,
}

#[derive(Debug)]
pub(super) struct Frame<L> {
    pub(super) gen: u32,
    pub(super) state: State,
    pub(super) stack: u16,
    pub(super) parent: Option<u16>,
    pub(super) this: u16,
    pub(super) cookie: u64,
    pub(super) op: Fop,
    pub(super) local: L,
    pub(super) begin: u64,
    pub(super) end: u64,
    /// Children wound and not yet unwound to this frame.
    pub(super) children: u16,
    /// Next frame of the same stack (`myframes`), or next free slot.
    pub(super) next: Option<u16>,
}

impl<L: Default> Default for Frame<L> {
    fn default() -> Self {
        Frame {
            gen: 0,
            state: State::Free,
            stack: 0,
            parent: None,
            this: 0,
            cookie: 0,
            op: Fop::Null,
            local: L::default(),
            begin: 0,
            end: 0,
            children: 0,
            next: None,
        }
    }
}

#[derive(Debug)]
pub(super) struct Stack<'a> {
    pub(super) gen: u32,
    pub(super) live: bool,
    pub(super) unique: u64,
    pub(super) creds: Creds,
    pub(super) buf: Option<&'a mut [u8]>,
    pub(super) req_len: usize,
    pub(super) err_xl: Option<u16>,
    pub(super) error: i32,
    pub(super) root: u16,
    pub(super) frames: Option<u16>,
    pub(super) reply: Option<Reply>,
    pub(super) op: Fop,
    pub(super) begin: u64,
    pub(super) latency: u64,
}

impl Default for Stack<'_> {
    fn default() -> Self {
        Stack {
            gen: 0,
            live: false,
            unique: 0,
            creds: Creds::default(),
            buf: None,
            req_len: 0,
            err_xl: None,
            error: 0,
            root: 0,
            frames: None,
            reply: None,
            op: Fop::Null,
            begin: 0,
            latency: 0,
        }
    }
}

/// The frame arena's free list and counters, over the caller's slots.
pub(super) struct Pool<'c, L> {
    pub(super) frames: &'c mut [Frame<L>],
    pub(super) free: &'c mut Option<u16>,
    pub(super) live: &'c mut usize,
}

impl<L: Default> Pool<'_, L> {
    /// Threads every slot onto the free list.
    pub(super) fn init(frames: &mut [Frame<L>]) -> Option<u16> {
        let n = frames.len();
        for (i, f) in frames.iter_mut().enumerate() {
            f.next = u16::try_from(i + 1).ok().filter(|&j| usize::from(j) < n);
        }
        (n > 0).then_some(0)
    }

    pub(super) fn get(&self, r: FrameRef) -> Option<&Frame<L>> {
        self.frames
            .get(r.index())
            .filter(|f| f.gen == r.gen && !matches!(f.state, State::Free))
    }

    pub(super) fn get_mut(&mut self, r: FrameRef) -> Option<&mut Frame<L>> {
        self.frames
            .get_mut(r.index())
            .filter(|f| f.gen == r.gen && !matches!(f.state, State::Free))
    }

    pub(super) fn at(&self, i: u16) -> Option<&Frame<L>> {
        self.frames.get(usize::from(i))
    }

    pub(super) fn at_mut(&mut self, i: u16) -> Option<&mut Frame<L>> {
        self.frames.get_mut(usize::from(i))
    }

    pub(super) fn reference(&self, i: u16) -> FrameRef {
        FrameRef {
            idx: i,
            gen: self.at(i).map_or(0, |f| f.gen),
        }
    }

    /// Takes a free slot and links it at the head of its stack's frame list.
    pub(super) fn alloc(&mut self, stack: &mut Stack<'_>, stack_idx: u16) -> Option<u16> {
        let i = (*self.free)?;
        let f = self.frames.get_mut(usize::from(i))?;
        *self.free = f.next;
        f.next = stack.frames;
        f.stack = stack_idx;
        f.children = 0;
        f.local = L::default();
        stack.frames = Some(i);
        *self.live += 1;
        Some(i)
    }

    /// STACK_DESTROY: frees every frame of the stack; returns how many were not done.
    pub(super) fn destroy(&mut self, stack: &mut Stack<'_>) -> usize {
        let mut unfinished = 0;
        let mut cur = stack.frames.take();
        while let Some(i) = cur {
            let Some(f) = self.frames.get_mut(usize::from(i)) else {
                break;
            };
            if !matches!(f.state, State::Done) {
                unfinished += 1;
            }
            cur = f.next;
            f.state = State::Free;
            f.gen = f.gen.wrapping_add(1);
            // `local` goes back to the pool: dropped here, as its mem-pool free would.
            f.local = L::default();
            f.next = *self.free;
            *self.free = Some(i);
            *self.live = self.live.saturating_sub(1);
        }
        unfinished
    }
}
