//! The sans-IO fop engine (translators.md §4): the shell hands it requests and completions
//! with `now` and polls replies and outputs; translators wind, tail-wind and unwind through a
//! [`Ctx`]. Calls and unwinds go through a run queue instead of nested calls, so a deep graph
//! never deepens the machine stack and every translator is borrowed alone; a synchronous
//! leaf still finishes the whole request before `handle_request` returns.

use core::fmt;

use heapless::Deque;

use super::args::{errno, Reply, Request};
use super::event::Event;
use super::fop::Fop;
use super::frame::{Creds, Frame, FrameRef, Pool, Stack, StackRef, State};

pub use super::ctx::Ctx;
pub use super::topology::{Topo, Topology};

/// Bytes a [`TraceLine`] holds; longer lines are cut. Rename's unwind line, with five iatts,
/// is the longest (about 1.8 KB).
pub const TRACE_LINE: usize = 2048;

/// One line of `debug/trace` output.
pub type TraceLine = heapless::String<TRACE_LINE>;

/// Something for the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
// Without an allocator nothing can be boxed: the variants stay inline.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// A `debug/trace` line from translator `xl`.
    Trace {
        /// The trace translator.
        xl: usize,
        /// The line, in upstream's format (§5.1).
        line: TraceLine,
    },
    /// A fop for a leaf the shell serves (storage/posix): answer it with
    /// [`Engine::handle_completion`]; its byte arguments are in [`Engine::buffer`].
    Io {
        /// The frame to complete.
        frame: FrameRef,
        /// The stack (for its buffer).
        stack: StackRef,
        /// The leaf.
        xl: usize,
        /// The call.
        req: Request,
    },
}

/// A misuse of the frame machinery, or a wind the pool cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallError {
    /// Every frame slot is in use (the pool holds `capacity`).
    Exhausted {
        /// Frames in the pool.
        capacity: usize,
    },
    /// The frame was destroyed (or never existed).
    Stale,
    /// The frame belongs to another translator.
    NotYours,
    /// The frame is not running (already unwound, or still queued).
    NotRunning,
    /// Children of this frame have not unwound yet.
    ChildrenOutstanding,
    /// `child` is not a child of the translator.
    NotAChild {
        /// The node named.
        child: usize,
    },
    /// The translator has no child to pass the fop to.
    NoChild,
    /// The reply does not fit the fop's callback (STACK_UNWIND_STRICT).
    Shape {
        /// The frame's fop.
        fop: Fop,
    },
    /// A span past the request buffer.
    Span,
    /// The output queue is full (a parked fop could not be handed to the shell).
    OutputFull,
    /// The request buffer is too small for bytes a translator adds.
    BufferFull {
        /// The buffer size needed.
        needed: usize,
    },
}

impl CallError {
    /// The errno a frame is failed with when its translator returns this error.
    pub fn errno(self) -> i32 {
        match self {
            CallError::Exhausted { .. } | CallError::OutputFull => errno::EAGAIN,
            CallError::NoChild => errno::ENOTCONN,
            CallError::BufferFull { .. } => errno::ENOBUFS,
            _ => errno::EIO,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Exhausted { capacity } => {
                write!(
                    f,
                    "all {capacity} frames are in use; a larger pool is needed"
                )
            }
            CallError::Stale => f.write_str("the frame no longer exists"),
            CallError::NotYours => f.write_str("the frame belongs to another translator"),
            CallError::NotRunning => f.write_str("the frame is not running (unwound twice?)"),
            CallError::ChildrenOutstanding => f.write_str("the frame still waits for its children"),
            CallError::NotAChild { child } => write!(f, "volume {child} is not a child"),
            CallError::NoChild => f.write_str("the translator has no child"),
            CallError::Shape { fop } => write!(f, "the reply does not fit {fop}'s callback"),
            CallError::Span => f.write_str("a span lies past the request buffer"),
            CallError::OutputFull => f.write_str("the output queue is full; poll outputs"),
            CallError::BufferFull { needed } => {
                write!(f, "the request buffer needs {needed} bytes")
            }
        }
    }
}

impl core::error::Error for CallError {}

/// Why a request was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SubmitError {
    /// Every stack slot is in use.
    Stacks {
        /// Stacks in the engine.
        capacity: usize,
    },
    /// Every frame is in use.
    Frames {
        /// Frames in the pool.
        capacity: usize,
    },
    /// The request's bytes end at `end`, past the buffer's `len`.
    Span {
        /// Where the bytes end.
        end: u64,
        /// The request bytes available.
        len: usize,
    },
}

impl SubmitError {
    /// EAGAIN for the capacities, EINVAL for a bad span.
    pub fn errno(self) -> i32 {
        match self {
            SubmitError::Span { .. } => errno::EINVAL,
            _ => errno::EAGAIN,
        }
    }
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Stacks { capacity } => {
                write!(
                    f,
                    "all {capacity} call stacks are in use; retry after a reply"
                )
            }
            SubmitError::Frames { capacity } => {
                write!(f, "all {capacity} frames are in use; retry after a reply")
            }
            SubmitError::Span { end, len } => write!(
                f,
                "request bytes end at {end} but only {len} are in the buffer"
            ),
        }
    }
}

impl core::error::Error for SubmitError {}

/// A refused request, with the buffer handed back.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// Why.
    pub error: SubmitError,
    /// The caller's buffer.
    pub buf: &'a mut [u8],
}

/// A finished request: the top's reply and the buffer, after STACK_DESTROY.
#[derive(Debug)]
pub struct Completed<'a> {
    /// The stack it was.
    pub stack: StackRef,
    /// `unique`.
    pub unique: u64,
    /// The fop.
    pub fop: Fop,
    /// What the top unwound.
    pub reply: Reply,
    /// The request buffer; reply spans point into it.
    pub buf: &'a mut [u8],
    /// `err_xl`: the last translator that unwound an error.
    pub err_xl: Option<usize>,
    /// `error`: that errno.
    pub error: i32,
    /// Latency from submission.
    pub latency: u64,
}

/// Counters over the engine's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Stacks created.
    pub stacks: u64,
    /// Frames created (root frames and STACK_WIND).
    pub frames: u64,
    /// STACK_WIND_TAIL re-targets.
    pub tails: u64,
    /// Unwinds (each frame unwinds once).
    pub unwinds: u64,
    /// Winds refused for want of a frame.
    pub exhausted: u64,
    /// Translator errors other than exhaustion (misuse).
    pub faults: u64,
    /// Frames destroyed before they had unwound.
    pub abandoned: u64,
    /// Trace lines dropped because the output queue was full.
    pub dropped: u64,
    /// Frames in use now.
    pub live_frames: usize,
    /// Most frames in use at once.
    pub peak_frames: usize,
}

/// What a callback receives besides its own frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwound {
    /// The cookie of the wind: the child frame's [`FrameRef::cookie`] unless given.
    pub cookie: u64,
    /// The translator that unwound (`prev->this`).
    pub child: usize,
    /// The fop.
    pub fop: Fop,
    /// The results.
    pub reply: Reply,
}

/// A translator: its fops and its callback. Both default to upstream's `default_<fop>` and
/// `default_<fop>_cbk`, so an implementation overrides only what it changes.
pub trait Translator {
    /// Per-frame state (`frame->local`), owned by the translator whose frame it is.
    type Local: Default;

    /// A fop on `frame` (which is this translator's). Default: STACK_WIND_TAIL to the first
    /// child. Returning an error fails the frame with [`CallError::errno`] if it still runs.
    fn call(
        &mut self,
        cx: &mut Ctx<'_, '_, Self::Local>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        cx.tail(frame, req)
    }

    /// A child wound from `frame` unwound. Default: unwind the same reply.
    fn unwound(
        &mut self,
        cx: &mut Ctx<'_, '_, Self::Local>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        cx.unwind(frame, from.reply)
    }

    /// `notify(this, event, from)`: an event from graph node `from` (CHILD_UP and CHILD_DOWN
    /// from a child, as [`Engine::notify`] delivers them). Default: nothing.
    fn notify(&mut self, from: usize, event: Event) {
        let _ = (from, event);
    }

    /// Work of its own the translator wants run now (a heal): the request for the root frame
    /// of a background stack at this translator. Asking commits to nothing: the same work is
    /// offered until it runs. Default: none.
    fn background(&self, now: u64) -> Option<Request> {
        let _ = now;
        None
    }
}

impl<T: Translator + ?Sized> Translator for &mut T {
    type Local = T::Local;
    fn call(
        &mut self,
        cx: &mut Ctx<'_, '_, T::Local>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        (**self).call(cx, frame, req)
    }
    fn unwound(
        &mut self,
        cx: &mut Ctx<'_, '_, T::Local>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        (**self).unwound(cx, frame, from)
    }
    fn notify(&mut self, from: usize, event: Event) {
        (**self).notify(from, event)
    }
    fn background(&self, now: u64) -> Option<Request> {
        (**self).background(now)
    }
}

/// Background work a translator asked for ([`Engine::next_background`]): run it with
/// [`Engine::handle_background`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Background {
    /// The translator whose work it is (the root frame runs there).
    pub xl: usize,
    /// The root frame's request.
    pub req: Request,
}

/// The engine: translators indexed by graph node, a pool of `F` frames, `S` stacks and an
/// output queue of `E`.
pub struct Engine<'a, X: Translator, const F: usize, const S: usize, const E: usize> {
    topo: Topo<'a>,
    xls: &'a mut [X],
    frames: [Frame<X::Local>; F],
    free: Option<u16>,
    live: usize,
    stacks: [Stack<'a>; S],
    queue: Deque<u16, F>,
    done: Deque<u16, S>,
    out: Deque<Output, E>,
    stats: Stats,
    unique: u64,
}

/// The engine was given a table that does not match its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TableMismatch {
    /// Translators in the graph.
    pub graph: usize,
    /// Entries in the table.
    pub table: usize,
}

impl fmt::Display for TableMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the graph has {} translators but the table {} (or the graph is empty)",
            self.graph, self.table
        )
    }
}

impl<'a, X: Translator, const F: usize, const S: usize, const E: usize> Engine<'a, X, F, S, E> {
    /// An engine over `xls`, one translator per graph node of `topo`. `F` and `S` must be
    /// below 65536.
    pub fn new(topo: Topo<'a>, xls: &'a mut [X]) -> Result<Self, TableMismatch> {
        if topo.len() != xls.len()
            || topo.is_empty()
            || F > usize::from(u16::MAX)
            || S > usize::from(u16::MAX)
        {
            return Err(TableMismatch {
                graph: topo.len(),
                table: xls.len(),
            });
        }
        let mut frames: [Frame<X::Local>; F] = core::array::from_fn(|_| Frame::default());
        let free = Pool::init(&mut frames);
        Ok(Engine {
            topo,
            xls,
            frames,
            free,
            live: 0,
            stacks: core::array::from_fn(|_| Stack::default()),
            queue: Deque::new(),
            done: Deque::new(),
            out: Deque::new(),
            stats: Stats::default(),
            unique: 0,
        })
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            live_frames: self.live,
            ..self.stats
        }
    }

    /// Stacks started and not yet polled.
    pub fn live_stacks(&self) -> usize {
        self.stacks.iter().filter(|s| s.live).count()
    }

    /// The translator table.
    pub fn translators(&self) -> &[X] {
        self.xls
    }

    /// create_frame: a new stack with one frame at the top for `req`, whose byte arguments
    /// are `buf[..req_len]`; the rest of `buf` is the reply area. Runs until every
    /// synchronous translator is done.
    pub fn handle_request(
        &mut self,
        now: u64,
        creds: Creds,
        req: Request,
        buf: &'a mut [u8],
        req_len: usize,
    ) -> Result<StackRef, Rejected<'a>> {
        let top = self.topo.top() as u16;
        self.start(now, creds, req, buf, req_len, top)
    }

    /// Delivers `event` from node `from` to translator `to` (its `notify`). The shell
    /// forwards here every notice the graph's activation and its later
    /// [`child_event`](super::graph::Graph::child_event)s address to a translator, so that
    /// cluster translators learn which children are up.
    pub fn notify(&mut self, to: usize, from: usize, event: Event) {
        if let Some(x) = self.xls.get_mut(to) {
            x.notify(from, event);
        }
    }

    /// The first translator's background work due at `now`, if any. The shell runs it with
    /// [`handle_background`](Self::handle_background), polls its reply like any other, and
    /// asks again until there is none (each run either finishes the work or defers it).
    pub fn next_background(&self, now: u64) -> Option<Background> {
        self.xls
            .iter()
            .enumerate()
            .find_map(|(xl, x)| x.background(now).map(|req| Background { xl, req }))
    }

    /// create_frame for background work: a new stack (root credentials) whose root frame is
    /// at `bg.xl`, with `buf` as its buffer (no request bytes). Its reply comes out of
    /// [`poll_reply`](Self::poll_reply) as any request's does.
    pub fn handle_background(
        &mut self,
        now: u64,
        bg: Background,
        buf: &'a mut [u8],
    ) -> Result<StackRef, Rejected<'a>> {
        // A translator the graph does not have is refused like a request past its bytes.
        let Some(at) = u16::try_from(bg.xl)
            .ok()
            .filter(|&x| usize::from(x) < self.topo.len())
        else {
            return Err(Rejected {
                error: SubmitError::Span {
                    end: bg.xl as u64,
                    len: self.topo.len(),
                },
                buf,
            });
        };
        self.start(now, Creds::default(), bg.req, buf, 0, at)
    }

    fn start(
        &mut self,
        now: u64,
        creds: Creds,
        req: Request,
        buf: &'a mut [u8],
        req_len: usize,
        top: u16,
    ) -> Result<StackRef, Rejected<'a>> {
        let len = req_len.min(buf.len());
        let bad = req
            .spans()
            .chain([creds.lk_owner])
            .map(|s| u64::from(s.off) + u64::from(s.len))
            .find(|&end| end > len as u64);
        let error = if let Some(end) = bad {
            Some(SubmitError::Span { end, len })
        } else if req_len > buf.len() {
            Some(SubmitError::Span {
                end: req_len as u64,
                len: buf.len(),
            })
        } else {
            None
        };
        if let Some(error) = error {
            return Err(Rejected { error, buf });
        }
        let Some(si) = self.stacks.iter().position(|s| !s.live) else {
            return Err(Rejected {
                error: SubmitError::Stacks { capacity: S },
                buf,
            });
        };
        let si16 = si as u16;
        let mut pool = Pool {
            frames: &mut self.frames,
            free: &mut self.free,
            live: &mut self.live,
        };
        let stack = &mut self.stacks[si];
        let Some(fi) = pool.alloc(stack, si16) else {
            self.stats.exhausted += 1;
            return Err(Rejected {
                error: SubmitError::Frames { capacity: F },
                buf,
            });
        };
        self.unique += 1;
        stack.live = true;
        stack.gen = stack.gen.wrapping_add(1);
        stack.unique = self.unique;
        stack.creds = creds;
        stack.buf = Some(buf);
        stack.req_len = req_len;
        stack.err_xl = None;
        stack.error = 0;
        stack.root = fi;
        stack.reply = None;
        stack.op = req.fop();
        stack.begin = now;
        let r = pool.reference(fi);
        if let Some(f) = pool.at_mut(fi) {
            f.state = State::Call(req);
            f.parent = None;
            f.this = top;
            f.cookie = r.cookie();
            f.op = req.fop();
            f.begin = now;
        }
        let sref = StackRef {
            idx: si16,
            gen: stack.gen,
        };
        self.stats.stacks += 1;
        self.stats.frames += 1;
        self.stats.peak_frames = self.stats.peak_frames.max(self.live);
        let _ = self.queue.push_back(fi);
        self.run(now);
        Ok(sref)
    }

    /// A parked frame's answer (an [`Output::Io`], or any frame a translator left running
    /// with no children): unwinds it as its translator would, then runs.
    pub fn handle_completion(
        &mut self,
        now: u64,
        frame: FrameRef,
        reply: Reply,
    ) -> Result<(), CallError> {
        let this = self
            .frames
            .get(frame.index())
            .filter(|f| f.gen == frame.gen && !matches!(f.state, State::Free))
            .ok_or(CallError::Stale)?
            .this;
        let r = self.ctx(this, now).unwind(frame, reply);
        self.run(now);
        r
    }

    /// The next finished request; its stack is destroyed (every frame freed) first.
    pub fn poll_reply(&mut self) -> Option<Completed<'a>> {
        let si = self.done.pop_front()?;
        let mut pool = Pool {
            frames: &mut self.frames,
            free: &mut self.free,
            live: &mut self.live,
        };
        let stack = self.stacks.get_mut(usize::from(si))?;
        let unfinished = pool.destroy(stack);
        self.stats.abandoned += unfinished as u64;
        stack.live = false;
        let buf = stack.buf.take().unwrap_or_default();
        Some(Completed {
            stack: StackRef {
                idx: si,
                gen: stack.gen,
            },
            unique: stack.unique,
            fop: stack.op,
            reply: stack.reply.take().unwrap_or(Reply::error(errno::EIO)),
            buf,
            err_xl: stack.err_xl.map(usize::from),
            error: stack.error,
            latency: stack.latency,
        })
    }

    /// The next output (trace lines, fops for the shell's leaves).
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A live stack's buffer (for serving an [`Output::Io`]).
    pub fn buffer(&mut self, stack: StackRef) -> Option<&mut [u8]> {
        let s = self
            .stacks
            .get_mut(usize::from(stack.idx))
            .filter(|s| s.live && s.gen == stack.gen)?;
        s.buf.as_deref_mut()
    }

    /// How many bytes of a live stack's buffer are request bytes (the reply area follows).
    pub fn request_len(&self, stack: StackRef) -> Option<usize> {
        self.stacks
            .get(usize::from(stack.idx))
            .filter(|s| s.live && s.gen == stack.gen)
            .map(|s| s.req_len)
    }

    fn ctx(&mut self, this: u16, now: u64) -> Ctx<'_, 'a, X::Local> {
        Ctx {
            pool: Pool {
                frames: &mut self.frames,
                free: &mut self.free,
                live: &mut self.live,
            },
            stacks: &mut self.stacks,
            queue: self.queue.as_mut_view(),
            out: self.out.as_mut_view(),
            stats: &mut self.stats,
            topo: self.topo,
            this,
            now,
        }
    }

    /// Drains the run queue: each entry is a frame with a call for its translator or an
    /// unwind for its parent's callback.
    fn run(&mut self, now: u64) {
        while let Some(i) = self.queue.pop_front() {
            let Some(f) = self.frames.get_mut(usize::from(i)) else {
                continue;
            };
            let fref = FrameRef { idx: i, gen: f.gen };
            match f.state {
                State::Call(req) => {
                    f.state = State::Running;
                    let this = f.this;
                    self.dispatch(this, now, fref, |xl, cx| xl.call(cx, fref, req));
                }
                State::Unwind(reply) => {
                    f.state = State::Done;
                    let (parent, cookie, child, fop, stack) =
                        (f.parent, f.cookie, f.this, f.op, f.stack);
                    let Some(p) = parent else {
                        if let Some(s) = self.stacks.get_mut(usize::from(stack)) {
                            s.reply = Some(reply);
                            s.latency = now.saturating_sub(s.begin);
                        }
                        let _ = self.done.push_back(stack);
                        continue;
                    };
                    let Some(pf) = self.frames.get_mut(usize::from(p)) else {
                        continue;
                    };
                    pf.children = pf.children.saturating_sub(1);
                    let pref = FrameRef {
                        idx: p,
                        gen: pf.gen,
                    };
                    let this = pf.this;
                    let from = Unwound {
                        cookie,
                        child: usize::from(child),
                        fop,
                        reply,
                    };
                    self.dispatch(this, now, pref, |xl, cx| xl.unwound(cx, pref, from));
                }
                _ => {}
            }
        }
    }

    fn dispatch(
        &mut self,
        this: u16,
        now: u64,
        frame: FrameRef,
        f: impl FnOnce(&mut X, &mut Ctx<'_, 'a, X::Local>) -> Result<(), CallError>,
    ) {
        let mut cx = Ctx {
            pool: Pool {
                frames: &mut self.frames,
                free: &mut self.free,
                live: &mut self.live,
            },
            stacks: &mut self.stacks,
            queue: self.queue.as_mut_view(),
            out: self.out.as_mut_view(),
            stats: &mut self.stats,
            topo: self.topo,
            this,
            now,
        };
        let Some(xl) = self.xls.get_mut(usize::from(this)) else {
            let _ = cx.unwind(frame, Reply::error(errno::EIO));
            return;
        };
        if let Err(e) = f(xl, &mut cx) {
            // Running out of frames, output slots or buffer is a capacity limit, not misuse
            // (refused winds are counted where they were refused).
            let capacity = matches!(
                e,
                CallError::Exhausted { .. } | CallError::OutputFull | CallError::BufferFull { .. }
            );
            if !capacity {
                cx.stats.faults += 1;
            }
            // The frame fails with the error's errno if its translator left it running.
            let fails = cx.pool.get(frame).is_some_and(|f| {
                f.this == this && matches!(f.state, State::Running) && f.children == 0
            });
            if fails {
                let _ = cx.unwind(frame, Reply::error(e.errno()));
            }
        }
    }
}
