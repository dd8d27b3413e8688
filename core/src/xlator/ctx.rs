//! [`Ctx`]: what a translator may do while it holds a frame (translators.md §4): STACK_WIND
//! (with or without a cookie), STACK_WIND_TAIL, STACK_UNWIND_STRICT with `err_xl` tracking,
//! `frame->local`, the request bytes and reply area, the credentials, trace lines and parking
//! a fop for the shell.

use super::args::{Reply, Request, Span};
use super::engine::{CallError, Output, Stats, TraceLine};
use super::frame::{Creds, Frame, FrameRef, Pool, Stack, StackRef, State};
use super::topology::Topo;

/// What a translator may do while it holds a frame: wind, tail-wind, unwind, read its
/// `local`, the request bytes and the credentials.
pub struct Ctx<'c, 'a, L> {
    pub(super) pool: Pool<'c, L>,
    pub(super) stacks: &'c mut [Stack<'a>],
    pub(super) queue: &'c mut heapless::deque::DequeView<u16>,
    pub(super) out: &'c mut heapless::deque::DequeView<Output>,
    pub(super) stats: &'c mut Stats,
    pub(super) topo: Topo<'c>,
    pub(super) this: u16,
    pub(super) now: u64,
}

impl<'a, L: Default> Ctx<'_, 'a, L> {
    /// The translator running.
    pub fn this(&self) -> usize {
        usize::from(self.this)
    }

    /// The time the shell gave with this input.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The running translator's children, first child first.
    pub fn children(&self) -> impl Iterator<Item = usize> + '_ {
        self.topo
            .children(self.this())
            .iter()
            .map(|&c| usize::from(c))
    }

    /// `FIRST_CHILD(this)`.
    pub fn first_child(&self) -> Option<usize> {
        self.children().next()
    }

    fn own(&self, frame: FrameRef) -> Result<&Frame<L>, CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        if f.this != self.this {
            return Err(CallError::NotYours);
        }
        Ok(f)
    }

    fn running(&self, frame: FrameRef) -> Result<&Frame<L>, CallError> {
        let f = self.own(frame)?;
        if !matches!(f.state, State::Running) {
            return Err(CallError::NotRunning);
        }
        Ok(f)
    }

    fn stack_of(&self, frame: FrameRef) -> Result<&Stack<'a>, CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        self.stacks
            .get(usize::from(f.stack))
            .ok_or(CallError::Stale)
    }

    /// `frame->local`.
    pub fn local(&mut self, frame: FrameRef) -> Result<&mut L, CallError> {
        self.own(frame)?;
        Ok(&mut self.pool.get_mut(frame).ok_or(CallError::Stale)?.local)
    }

    /// Detaches `frame->local` (leaving the default), as translators that free their own
    /// local do before unwinding (§4).
    pub fn take_local(&mut self, frame: FrameRef) -> Result<L, CallError> {
        Ok(core::mem::take(self.local(frame)?))
    }

    /// When the frame was wound.
    pub fn begin(&self, frame: FrameRef) -> Result<u64, CallError> {
        Ok(self.pool.get(frame).ok_or(CallError::Stale)?.begin)
    }

    /// `frame->root->unique`.
    pub fn unique(&self, frame: FrameRef) -> Result<u64, CallError> {
        Ok(self.stack_of(frame)?.unique)
    }

    /// The stack's credentials.
    pub fn creds(&self, frame: FrameRef) -> Result<Creds, CallError> {
        Ok(self.stack_of(frame)?.creds)
    }

    /// The request bytes `span` names.
    pub fn bytes(&self, frame: FrameRef, span: Span) -> Result<&[u8], CallError> {
        let s = self.stack_of(frame)?;
        let buf = s.buf.as_deref().unwrap_or_default();
        span.get(buf.get(..s.req_len).unwrap_or_default())
            .ok_or(CallError::Span)
    }

    /// The reply area: the buffer after the request bytes, and the offset it starts at (for
    /// the reply's spans). A leaf writes read data, link targets and entries here.
    pub fn scratch(&mut self, frame: FrameRef) -> Result<(&mut [u8], u32), CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        let s = self
            .stacks
            .get_mut(usize::from(f.stack))
            .ok_or(CallError::Stale)?;
        let base = u32::try_from(s.req_len).map_err(|_| CallError::Span)?;
        let buf = s.buf.as_deref_mut().unwrap_or_default();
        Ok((buf.get_mut(s.req_len..).unwrap_or_default(), base))
    }

    /// Both the request bytes and the reply area (a leaf copying request bytes into its
    /// reply reads one while writing the other).
    pub fn split(&mut self, frame: FrameRef) -> Result<(&[u8], &mut [u8], u32), CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        let s = self
            .stacks
            .get_mut(usize::from(f.stack))
            .ok_or(CallError::Stale)?;
        let base = u32::try_from(s.req_len).map_err(|_| CallError::Span)?;
        let buf = s.buf.as_deref_mut().unwrap_or_default();
        let at = s.req_len.min(buf.len());
        let (a, b) = buf.split_at_mut(at);
        Ok((a, b, base))
    }

    /// Appends `bytes` to the request bytes of `frame`'s stack (shrinking the reply area), for
    /// a translator that winds a call of its own with bytes it kept (write-behind's cache).
    pub fn push_bytes(&mut self, frame: FrameRef, bytes: &[u8]) -> Result<Span, CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        let s = self
            .stacks
            .get_mut(usize::from(f.stack))
            .ok_or(CallError::Stale)?;
        let end = s.req_len + bytes.len();
        let buf = s.buf.as_deref_mut().unwrap_or_default();
        let dst = buf
            .get_mut(s.req_len..end)
            .ok_or(CallError::BufferFull { needed: end })?;
        dst.copy_from_slice(bytes);
        let span = Span {
            off: u32::try_from(s.req_len).map_err(|_| CallError::Span)?,
            len: u32::try_from(bytes.len()).map_err(|_| CallError::Span)?,
        };
        s.req_len = end;
        Ok(span)
    }

    /// How many bytes of `frame`'s stack buffer are request bytes now.
    pub fn request_len(&self, frame: FrameRef) -> Result<usize, CallError> {
        Ok(self.stack_of(frame)?.req_len)
    }

    /// Moves the end of the request bytes of `frame`'s stack to `len` (within the buffer): a
    /// translator that winds a call with bytes a child just returned (a heal writing what it
    /// read, or naming the entries it listed) keeps them as request bytes by moving the end
    /// past them, and later drops them by moving it back.
    pub fn set_request_len(&mut self, frame: FrameRef, len: usize) -> Result<(), CallError> {
        let f = self.pool.get(frame).ok_or(CallError::Stale)?;
        let s = self
            .stacks
            .get_mut(usize::from(f.stack))
            .ok_or(CallError::Stale)?;
        let cap = s.buf.as_deref().map_or(0, <[u8]>::len);
        if len > cap || u32::try_from(len).is_err() {
            return Err(CallError::BufferFull { needed: len });
        }
        s.req_len = len;
        Ok(())
    }

    /// STACK_WIND (cookie = the new frame) to `child`.
    pub fn wind(
        &mut self,
        frame: FrameRef,
        child: usize,
        req: Request,
    ) -> Result<FrameRef, CallError> {
        self.wind_with(frame, child, None, req)
    }

    /// STACK_WIND_COOKIE: as [`wind`](Self::wind) with an explicit cookie (AFR and EC pass the
    /// child index).
    pub fn wind_cookie(
        &mut self,
        frame: FrameRef,
        child: usize,
        cookie: u64,
        req: Request,
    ) -> Result<FrameRef, CallError> {
        self.wind_with(frame, child, Some(cookie), req)
    }

    fn wind_with(
        &mut self,
        frame: FrameRef,
        child: usize,
        cookie: Option<u64>,
        req: Request,
    ) -> Result<FrameRef, CallError> {
        let parent = self.running(frame)?;
        let stack_idx = parent.stack;
        let c = self
            .topo
            .children(self.this())
            .iter()
            .copied()
            .find(|&c| usize::from(c) == child)
            .ok_or(CallError::NotAChild { child })?;
        let capacity = self.pool.frames.len();
        let stack = self
            .stacks
            .get_mut(usize::from(stack_idx))
            .ok_or(CallError::Stale)?;
        let Some(i) = self.pool.alloc(stack, stack_idx) else {
            self.stats.exhausted += 1;
            return Err(CallError::Exhausted { capacity });
        };
        let now = self.now;
        let r = self.pool.reference(i);
        if let Some(f) = self.pool.at_mut(i) {
            f.state = State::Call(req);
            f.parent = Some(frame.idx);
            f.this = c;
            f.cookie = cookie.unwrap_or(r.cookie());
            f.op = req.fop();
            f.begin = now;
        }
        if let Some(p) = self.pool.get_mut(frame) {
            p.children = p.children.saturating_add(1);
        }
        self.stats.frames += 1;
        self.stats.live_frames = *self.pool.live;
        self.stats.peak_frames = self.stats.peak_frames.max(*self.pool.live);
        // One queue slot per frame: a frame is queued at most once at a time.
        let _ = self.queue.push_back(i);
        Ok(r)
    }

    /// STACK_WIND_TAIL: hands `frame` itself to the first child, whose unwind goes straight
    /// to our parent's callback; no frame is made, so a pass-through layer costs none.
    pub fn tail(&mut self, frame: FrameRef, req: Request) -> Result<(), CallError> {
        self.running(frame)?;
        let child = self.first_child().ok_or(CallError::NoChild)?;
        let f = self.pool.get_mut(frame).ok_or(CallError::Stale)?;
        f.this = child as u16;
        f.state = State::Call(req);
        self.stats.tails += 1;
        let _ = self.queue.push_back(frame.idx);
        Ok(())
    }

    /// STACK_UNWIND_STRICT: checks the reply's shape, records `err_xl`/`error` (§4), marks
    /// the frame complete and queues the parent's callback. The frame stays until
    /// STACK_DESTROY.
    pub fn unwind(&mut self, frame: FrameRef, reply: Reply) -> Result<(), CallError> {
        let f = self.running(frame)?;
        if f.children != 0 {
            return Err(CallError::ChildrenOutstanding);
        }
        if !reply.fits(f.op) {
            return Err(CallError::Shape { fop: f.op });
        }
        let stack_idx = usize::from(f.stack);
        if let Some(s) = self.stacks.get_mut(stack_idx) {
            if reply.op_ret < 0 && reply.op_errno != s.error {
                s.err_xl = Some(self.this);
                s.error = reply.op_errno;
            } else if reply.op_ret == 0 {
                s.err_xl = None;
                s.error = 0;
            }
        }
        let now = self.now;
        let f = self.pool.get_mut(frame).ok_or(CallError::Stale)?;
        f.state = State::Unwind(reply);
        f.end = now;
        self.stats.unwinds += 1;
        let _ = self.queue.push_back(frame.idx);
        Ok(())
    }

    /// Queues a trace line; counted as dropped when the output queue is full.
    pub fn trace(&mut self, line: TraceLine) {
        let xl = self.this();
        if self.out.push_back(Output::Trace { xl, line }).is_err() {
            self.stats.dropped += 1;
        }
    }

    /// Parks `frame` for the shell to serve (storage/posix): an [`Output::Io`]; fails with
    /// `EAGAIN` when the output queue is full.
    pub fn park(&mut self, frame: FrameRef, req: Request) -> Result<(), CallError> {
        let f = self.running(frame)?;
        let stack = StackRef {
            idx: f.stack,
            gen: self.stack_of(frame)?.gen,
        };
        let xl = self.this();
        self.out
            .push_back(Output::Io {
                frame,
                stack,
                xl,
                req,
            })
            .map_err(|_| CallError::OutputFull)
    }
}

#[cfg(test)]
mod tests {
    use super::super::args::{errno, Body, Fd, Reply, Request};
    use super::super::engine::{CallError, Engine, Translator, Unwound};
    use super::super::frame::{Creds, FrameRef};
    use super::super::topology::Topology;
    use super::super::types::BUILTIN;
    use super::super::{Graph, Volfile};
    use super::Ctx;
    use std::vec::Vec;

    /// A translator that tries each misuse once and records what the machinery said.
    #[derive(Default)]
    struct Probe {
        said: Vec<Result<(), CallError>>,
        leaf: bool,
    }

    impl Translator for Probe {
        type Local = u32;

        fn call(
            &mut self,
            cx: &mut Ctx<'_, '_, u32>,
            f: FrameRef,
            req: Request,
        ) -> Result<(), CallError> {
            if self.leaf {
                return cx.unwind(f, Reply::ok(0, Body::Empty));
            }
            let child = cx.first_child().ok_or(CallError::NoChild)?;
            *cx.local(f)? = 7;
            self.said.push(cx.wind(f, 99, req).map(|_| ()));
            let c = cx.wind(f, child, req)?;
            // The child's frame is not ours, and we may not unwind before it has.
            self.said.push(cx.unwind(c, Reply::error(errno::EIO)));
            self.said.push(cx.unwind(f, Reply::ok(0, Body::Empty)));
            Ok(())
        }

        fn unwound(
            &mut self,
            cx: &mut Ctx<'_, '_, u32>,
            f: FrameRef,
            from: Unwound,
        ) -> Result<(), CallError> {
            assert_eq!(*cx.local(f)?, 7, "local survives the wind");
            assert_eq!(
                FrameRef::from_cookie(from.cookie).index(),
                1,
                "default cookie: the child frame"
            );
            self.said.push(cx.unwind(
                f,
                Reply::ok(
                    0,
                    Body::Attr {
                        buf: Default::default(),
                    },
                ),
            ));
            self.said.push(cx.unwind(f, from.reply));
            self.said.push(cx.unwind(f, from.reply));
            Ok(())
        }
    }

    #[test]
    fn misuse_is_refused_with_a_typed_error_and_the_frame_survives() {
        let src = b"volume a\n type storage/ram\n option size-limit 0\nend-volume\n\
                    volume b\n type debug/io-stats\n subvolumes a\nend-volume\n";
        let vf: Volfile<'_, 4, 4, 4> = Volfile::parse(src).unwrap();
        let g = Graph::build(&vf, BUILTIN).unwrap();
        let topo = Topology::<4, 4>::from_graph(&g);
        let mut xls = [
            Probe {
                leaf: true,
                ..Probe::default()
            },
            Probe::default(),
        ];
        let mut buf = [0u8; 16];
        let mut e: Engine<'_, Probe, 4, 2, 2> = Engine::new(topo.view(), &mut xls).unwrap();
        e.handle_request(
            1,
            Creds::default(),
            Request::Flush { fd: Fd(1) },
            &mut buf,
            0,
        )
        .unwrap();
        let c = e.poll_reply().unwrap();
        assert_eq!(c.reply.op_ret, 0);
        let s = e.stats();
        assert_eq!((s.frames, s.unwinds, s.live_frames, s.faults), (2, 2, 0, 0));
        assert_eq!(
            e.translators()[1].said,
            [
                Err(CallError::NotAChild { child: 99 }),
                Err(CallError::NotYours),
                Err(CallError::ChildrenOutstanding),
                Err(CallError::Shape {
                    fop: super::super::fop::Fop::Flush
                }),
                Ok(()),
                Err(CallError::NotRunning),
            ]
        );
    }
}
