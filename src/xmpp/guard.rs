//! A guard on the bytes the server sends: any element nested more than
//! [`MAX_PAYLOAD_DEPTH`] levels below its stanza, and any name or attribute
//! longer than [`MAX_TOKEN_BYTES`], is cut out before the XML parser sees
//! it.
//!
//! Why depth: the library stack parses a deep stanza in time proportional
//! to the square of its depth. xso's `ElementFromEvents` (which builds a
//! payload's `minidom::Element`) hands every parser event down the whole
//! chain of builders for the elements still open, and rxml looks up an
//! element's default namespace by walking the stack of open elements. A
//! stanza nested 30,000 levels (about 210 KiB, under Prosody's 256 KiB
//! stanza limit) kept the agent busy for minutes, long before attache's own
//! payload checks could answer it. Neither library has an option that
//! bounds the depth.
//!
//! Why length: rxml refuses an element name, attribute name or attribute
//! value over its `max_token_length` (8,192 bytes once decoded) with a
//! fatal error, and tokio-xmpp uses rxml's defaults without a way to change
//! them. One such stanza from anyone ended the agent's stream; the server
//! then re-sent the unacknowledged stanza on resumption (XEP-0198), so the
//! agent reconnected about ten times a second and answered nothing. Text,
//! CDATA and end tags are not a problem: rxml splits long text, and an end
//! tag's name is its start tag's. References are at most 8 bytes to rxml,
//! but only a server could send a longer one (Prosody re-escapes every
//! stanza with five short entities), and comments and processing
//! instructions are refused by rxml whatever their length, so a server
//! that forwarded them would break the stream anyway.
//!
//! How: [`DepthGuard`] wraps the connection's byte stream (writes pass
//! through untouched) and runs a small resumable state machine over what it
//! reads, so any read boundary is fine. It recognises just enough XML to
//! count open elements and measure names and attribute values: start tags
//! (attribute values in either quote may hold `>` and `/`), end tags,
//! empty-element tags, CDATA sections, comments, processing instructions
//! (the `<?xml ...?>` declaration) and other `<!...>` declarations.
//!
//! - A payload element (below the stanza) that would open deeper than the
//!   depth limit, whose name or an attribute's name or value is over
//!   [`MAX_TOKEN_BYTES`], or whose start tag is over
//!   [`MAX_START_TAG_BYTES`], is cut out from its `<` to the `>` that
//!   closes it. The guard holds each payload start tag back until its `>`
//!   to know. A direct child of the stanza is replaced by
//!   `<cut xmlns='urn:attache:guard'/>` instead, because an IQ request must
//!   keep exactly one child: tokio-xmpp silently discards an IQ it cannot
//!   parse, and the sender would never get an answer. attache does not
//!   know that namespace, so an IQ request gets `service-unavailable`, and
//!   a message or presence ignores it.
//! - On the stanza element itself nothing can be cut out without breaking
//!   XEP-0198 counts, so an attribute value over [`MAX_TOKEN_BYTES`] is
//!   shortened to between [`MAX_TOKEN_BYTES`] and [`MAX_TOKEN_BYTES`] +
//!   [`CUT_SLACK_BYTES`] bytes, never inside a UTF-8 character or an
//!   `&...;` reference, and an attribute whose name is over the bound is
//!   left out whole. The stanza is still processed: an IQ whose `id` was
//!   shortened gets its answer under the shortened id (which the sender
//!   will not recognise); one whose `type` was is discarded by tokio-xmpp
//!   as invalid, without harm to the stream. Prosody sets `from`, checks
//!   `to` and an IQ's `type`, so in practice only `id`, a message's or
//!   presence's `type`, and attributes nobody reads are affected. The
//!   stanza's own element name is not bounded: only the server chooses it
//!   (Prosody routes only `message`, `presence` and `iq`).
//!
//! The elements kept keep their real end tags, so the stanza stays well
//! formed and still arrives: XEP-0198 counts stay right and the payload
//! checks answer it (an IQ with a too-deep payload gets `bad-request`),
//! while the parser only ever sees bounded depth and lengths.
//!
//! Stream restarts (after STARTTLS and SASL) send a new header on the same
//! byte stream without closing the old one, so a start tag literally named
//! `stream:stream`, as Prosody and tokio-xmpp write it, sets the depth back
//! to one, but only at stream level: inside a stanza an element of that
//! name (its prefix bound to any namespace) is an ordinary level, or a peer
//! could reset the count at will. A server that binds the streams namespace
//! to another prefix would leave the count one level too high after each
//! restart, which only makes the guard stricter by a level.
//!
//! Owns the read side of one connection. Memory is fixed: a read buffer,
//! an output buffer and room for one held-back start tag, about 32 KiB,
//! plus a few counters; nothing is buffered per stanza. It never changes a
//! byte of anything within the limits; `<!DOCTYPE` internal subsets are
//! not tracked exactly, which does not matter since rxml refuses DTDs and
//! ends the stream.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::warn;

/// How many levels below its stanza an element may sit before the guard cuts
/// it out. Payloads in the wild stay far below: a MAM result carrying a
/// forwarded message with an XHTML-IM body, or a PubSub item with an Atom
/// entry, is 10–15 levels; attache's own payloads are 4. 128 leaves an order
/// of magnitude to spare, and at that depth the quadratic parsing costs
/// about 16,000 steps per stanza: nothing.
pub(crate) const MAX_PAYLOAD_DEPTH: usize = 128;

/// The longest element name, attribute name or attribute value, in bytes as
/// sent, that the guard lets through. rxml's limit is 8,192 bytes after
/// decoding references, and decoding never makes a value longer, so half
/// of it leaves room for the slack of a cut ([`CUT_SLACK_BYTES`]) and for
/// a future rxml that counts differently. Legitimate values are far
/// shorter: JIDs are at most 3,071 bytes, ids and namespaces well under
/// 100, and the longest attributes in common use, upload-slot URLs
/// (XEP-0363), about 2 KiB.
pub(crate) const MAX_TOKEN_BYTES: usize = 4 * 1024;

/// The longest payload start tag, `<` to `>` with all its attributes, that
/// the guard holds back to decide on; longer ones are cut out. Twice a
/// single token: attache's own start tags are under 300 bytes.
pub(crate) const MAX_START_TAG_BYTES: usize = 8 * 1024;

/// How far past [`MAX_TOKEN_BYTES`] a shortened stanza attribute value may
/// run to end on a whole UTF-8 character (at most 3 more bytes) or after
/// a reference (rxml takes at most 8 bytes between `&` and `;`). Past it
/// the value is cut regardless: only broken XML gets there.
const CUT_SLACK_BYTES: usize = 16;

/// What replaces a direct child of the stanza that is cut out, so that an
/// IQ request keeps its one child.
const PLACEHOLDER: &[u8] = b"<cut xmlns='urn:attache:guard'/>";

/// The stream header is depth 1, so a stanza is depth 2.
const STANZA_DEPTH: usize = 2;

/// The stream header's element name as Prosody and tokio-xmpp write it.
const STREAM_HEADER_NAME: &[u8] = b"stream:stream";

/// Bytes read from the connection at a time (the same as the `BufStream`
/// above it).
const SCRATCH_BYTES: usize = 8 * 1024;

/// Reads whose every byte was cut out or held back that one poll may make
/// before it yields, so a flood of suppressed bytes cannot hog the runtime
/// thread.
const MAX_SILENT_READS: usize = 16;

/// Stanzas cut (too deep, too long) since the process started, for the log.
static TRUNCATED_STANZAS: AtomicU64 = AtomicU64::new(0);

/// The connection's byte stream, with elements nested deeper than
/// [`MAX_PAYLOAD_DEPTH`] below their stanza, and names and attributes over
/// [`MAX_TOKEN_BYTES`], cut out of what is read.
pub(crate) struct DepthGuard<S> {
    inner: S,
    filter: DepthFilter,
    /// What was last read from `inner`.
    scratch: Box<[u8]>,
    /// `output[ready_from..]` is filtered output not yet returned.
    output: Vec<u8>,
    ready_from: usize,
}

impl<S> DepthGuard<S> {
    /// Guards a fresh connection (or a fresh TLS layer on one): depth 0,
    /// expecting a stream header.
    pub(crate) fn new(inner: S) -> Self {
        Self::with_limit(inner, MAX_PAYLOAD_DEPTH)
    }

    fn with_limit(inner: S, max_payload_depth: usize) -> Self {
        Self::with_limits(
            inner,
            max_payload_depth,
            MAX_TOKEN_BYTES,
            MAX_START_TAG_BYTES,
        )
    }

    fn with_limits(
        inner: S,
        max_payload_depth: usize,
        max_token: usize,
        max_start_tag: usize,
    ) -> Self {
        Self {
            inner,
            filter: DepthFilter::new(max_payload_depth, max_token, max_start_tag),
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            // One read, the start tag held back before it and the
            // placeholder: never reallocated.
            output: Vec::with_capacity(SCRATCH_BYTES + MAX_START_TAG_BYTES + PLACEHOLDER.len()),
            ready_from: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DepthGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut silent_reads = 0;
        loop {
            if this.ready_from < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.ready_from);
                buf.put_slice(&this.output[this.ready_from..this.ready_from + n]);
                this.ready_from += n;
                return Poll::Ready(Ok(()));
            }
            this.output.clear();
            this.ready_from = 0;
            let mut read = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                // End of stream: a start tag held back is passed on, so the
                // parser sees exactly what arrived and reports the cut-off
                // document; the next read finds nothing held and ends.
                this.filter.finish(&mut this.output);
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.filter.filter(&this.scratch[..n], &mut this.output);
            if this.output.is_empty() {
                silent_reads += 1;
                if silent_reads >= MAX_SILENT_READS {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DepthGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where the state machine is in the XML syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data between tags.
    Text,
    /// Just after `<`.
    Lt,
    /// In the element name of a start tag.
    StartName,
    /// In a start tag between attributes; `slash` if the last byte was `/`
    /// (so `>` ends an empty-element tag).
    StartTag { slash: bool },
    /// In an attribute's name.
    AttrName,
    /// After an attribute's name, before its value's opening quote.
    AttrEq,
    /// In an attribute value delimited by `quote`.
    AttrValue { quote: u8 },
    /// In an end tag.
    EndTag,
    /// Just after `<!`.
    Bang,
    /// After `<!-`.
    BangDash,
    /// After `<!` and the first `matched` bytes of `[CDATA[`.
    CdataOpen { matched: usize },
    /// In a comment; `dashes` counts the `-` just seen (up to 2).
    Comment { dashes: u8 },
    /// In a CDATA section; `brackets` counts the `]` just seen (up to 2).
    Cdata { brackets: u8 },
    /// In a processing instruction; `question` if the last byte was `?`.
    Pi { question: bool },
    /// In any other `<!...>` declaration.
    Decl,
}

const CDATA_OPEN: &[u8] = b"[CDATA[";

/// Which rules the current start tag falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// The stream header: passed as is (only the server writes it).
    Stream,
    /// A stanza: long attribute values shortened, long names left out.
    Stanza,
    /// A payload element: held back, and cut out if too long.
    Payload,
}

/// Why an element was cut out, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    TooDeep,
    LongToken,
    LongStartTag,
    /// An attribute of the stanza itself was shortened or left out.
    StanzaAttribute,
}

/// The pure state machine: bytes in, the bytes to pass on out.
#[derive(Debug)]
struct DepthFilter {
    lex: Lex,
    /// Elements open, counting the stream header and the suppressed ones.
    depth: usize,
    /// The deepest an element may open and still be passed on.
    max_depth: usize,
    /// [`MAX_TOKEN_BYTES`], smaller in tests.
    max_token: usize,
    /// [`MAX_START_TAG_BYTES`], smaller in tests.
    max_start_tag: usize,
    /// Cutting out an element that opened below this depth: until the depth
    /// is back to it, nothing is passed on.
    suppress_to: Option<usize>,
    /// The rules for the start tag being read (or last read).
    tag: Tag,
    /// Bytes go to `hold` instead of out: a payload start tag until its
    /// `>`, or a stanza's attribute name until it ends.
    holding: bool,
    /// Bytes read but not passed on yet, at most [`MAX_START_TAG_BYTES`].
    hold: Vec<u8>,
    /// Bytes of the current element name, attribute name or value.
    token: usize,
    /// Leaving out the stanza attribute being read (its name was too long),
    /// up to its closing quote.
    attr_dropped: bool,
    /// Leaving out the rest of the stanza attribute value being read, up to
    /// its closing quote (which is passed on).
    value_cut: bool,
    /// Inside an `&...;` reference in an attribute value.
    in_reference: bool,
    /// How many bytes of the current start tag's name match
    /// `stream:stream`; `None` once it cannot.
    name_matched: Option<usize>,
    /// The current start tag is named `stream:stream`.
    tag_is_stream_header: bool,
    /// The current stanza was already counted and logged as truncated.
    stanza_truncated: bool,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

impl DepthFilter {
    fn new(max_payload_depth: usize, max_token: usize, max_start_tag: usize) -> Self {
        Self {
            lex: Lex::Text,
            depth: 0,
            max_depth: STANZA_DEPTH + max_payload_depth,
            max_token,
            max_start_tag,
            suppress_to: None,
            tag: Tag::Stream,
            holding: false,
            hold: Vec::with_capacity(max_start_tag),
            token: 0,
            attr_dropped: false,
            value_cut: false,
            in_reference: false,
            name_matched: Some(0),
            tag_is_stream_header: false,
            stanza_truncated: false,
        }
    }

    /// Appends what to pass on of `input` to `out`: at most all of it and
    /// what was held back before it, plus a placeholder.
    fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            self.step(byte, out);
        }
    }

    /// Gives up what is held back at the end of the input.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.holding {
            out.append(&mut self.hold);
            self.holding = false;
        }
    }

    fn step(&mut self, byte: u8, out: &mut Vec<u8>) {
        if self.holding && self.tag == Tag::Payload && self.hold.len() >= self.max_start_tag {
            self.cut_element(Cut::LongStartTag, out);
        }
        // The `>` that ends a suppressed element is suppressed too, so
        // decide before the byte changes anything.
        let quiet = self.suppress_to.is_some();
        // The closing quote of an attribute left out is left out too.
        let mut mute = false;
        match self.lex {
            Lex::Text => {
                if byte == b'<' {
                    self.lex = Lex::Lt;
                    if !quiet {
                        self.tag = match self.depth {
                            0 => Tag::Stream,
                            1 => Tag::Stanza,
                            _ => Tag::Payload,
                        };
                        self.holding = self.tag == Tag::Payload;
                    }
                }
            }
            Lex::Lt => match byte {
                b'/' => self.lex = Lex::EndTag,
                b'!' => self.lex = Lex::Bang,
                b'?' => self.lex = Lex::Pi { question: false },
                _ => {
                    self.name_matched = Some(0);
                    self.token = 0;
                    self.attr_dropped = false;
                    self.value_cut = false;
                    self.lex = Lex::StartName;
                    if !quiet && self.depth >= self.max_depth {
                        self.cut_element(Cut::TooDeep, out);
                    }
                    self.start_name(byte, out);
                }
            },
            Lex::StartName => self.start_name(byte, out),
            Lex::StartTag { slash } => self.in_start_tag(byte, slash),
            Lex::AttrName => {
                if is_space(byte) || byte == b'=' {
                    self.lex = Lex::AttrEq;
                } else if matches!(byte, b'>' | b'/' | b'"' | b'\'') {
                    // A name without a value: not XML, but keep counting.
                    self.attr_dropped = false;
                    self.in_start_tag(byte, false);
                } else {
                    self.token += 1;
                    if self.token > self.max_token && !quiet {
                        self.long_token(out);
                    }
                }
            }
            Lex::AttrEq => match byte {
                b'"' | b'\'' => {
                    self.lex = Lex::AttrValue { quote: byte };
                    self.token = 0;
                    self.in_reference = false;
                }
                b'=' => {}
                _ if is_space(byte) => {}
                _ => {
                    self.attr_dropped = false;
                    self.in_start_tag(byte, false);
                }
            },
            Lex::AttrValue { quote } => {
                if byte == quote {
                    self.lex = Lex::StartTag { slash: false };
                    mute = self.attr_dropped;
                    self.attr_dropped = false;
                    self.value_cut = false;
                } else {
                    self.value_byte(byte, quiet, out);
                }
            }
            Lex::EndTag => {
                if byte == b'>' {
                    self.lex = Lex::Text;
                    self.depth = self.depth.saturating_sub(1);
                    self.element_ended();
                }
            }
            Lex::Bang => {
                self.lex = match byte {
                    b'-' => Lex::BangDash,
                    b'[' => Lex::CdataOpen { matched: 1 },
                    b'>' => Lex::Text,
                    _ => Lex::Decl,
                }
            }
            Lex::BangDash => {
                self.lex = match byte {
                    b'-' => Lex::Comment { dashes: 0 },
                    b'>' => Lex::Text,
                    _ => Lex::Decl,
                }
            }
            Lex::CdataOpen { matched } => {
                self.lex = if byte == CDATA_OPEN[matched] {
                    if matched + 1 == CDATA_OPEN.len() {
                        Lex::Cdata { brackets: 0 }
                    } else {
                        Lex::CdataOpen {
                            matched: matched + 1,
                        }
                    }
                } else if byte == b'>' {
                    Lex::Text
                } else {
                    Lex::Decl
                }
            }
            Lex::Comment { dashes } => {
                self.lex = match byte {
                    b'-' => Lex::Comment {
                        dashes: (dashes + 1).min(2),
                    },
                    b'>' if dashes == 2 => Lex::Text,
                    _ => Lex::Comment { dashes: 0 },
                }
            }
            Lex::Cdata { brackets } => {
                self.lex = match byte {
                    b']' => Lex::Cdata {
                        brackets: (brackets + 1).min(2),
                    },
                    b'>' if brackets == 2 => Lex::Text,
                    _ => Lex::Cdata { brackets: 0 },
                }
            }
            Lex::Pi { question } => {
                self.lex = if byte == b'>' && question {
                    Lex::Text
                } else {
                    Lex::Pi {
                        question: byte == b'?',
                    }
                }
            }
            Lex::Decl => {
                if byte == b'>' {
                    self.lex = Lex::Text;
                }
            }
        }
        if quiet || mute || self.suppress_to.is_some() || self.attr_dropped || self.value_cut {
            return;
        }
        if self.holding {
            self.hold.push(byte);
            if !self.still_holding() {
                out.append(&mut self.hold);
                self.holding = false;
            }
        } else {
            out.push(byte);
        }
    }

    /// Whether the bytes held back still cannot be judged.
    fn still_holding(&self) -> bool {
        match self.tag {
            Tag::Payload => matches!(
                self.lex,
                Lex::Lt
                    | Lex::StartName
                    | Lex::StartTag { .. }
                    | Lex::AttrName
                    | Lex::AttrEq
                    | Lex::AttrValue { .. }
            ),
            Tag::Stanza => self.lex == Lex::AttrName,
            Tag::Stream => false,
        }
    }

    /// A byte of a start tag's name (or what ends it).
    fn start_name(&mut self, byte: u8, out: &mut Vec<u8>) {
        let name_ends = matches!(byte, b'>' | b'/') || is_space(byte);
        if !name_ends {
            self.name_matched = self.name_matched.and_then(|matched| {
                (STREAM_HEADER_NAME.get(matched) == Some(&byte)).then_some(matched + 1)
            });
            self.token += 1;
            // The stanza's name is the server's; only payload names count.
            if self.token > self.max_token && self.tag == Tag::Payload && self.suppress_to.is_none()
            {
                self.cut_element(Cut::LongToken, out);
            }
            return;
        }
        self.tag_is_stream_header = self.name_matched == Some(STREAM_HEADER_NAME.len());
        if self.tag_is_stream_header && self.depth <= 1 {
            // A stream restart, not a stanza: the server's, passed as is.
            self.tag = Tag::Stream;
        }
        match byte {
            b'>' => {
                self.lex = Lex::Text;
                self.open();
            }
            b'/' => self.lex = Lex::StartTag { slash: true },
            _ => self.lex = Lex::StartTag { slash: false },
        }
    }

    /// A byte of a start tag between attributes.
    fn in_start_tag(&mut self, byte: u8, slash: bool) {
        match byte {
            b'>' => {
                self.lex = Lex::Text;
                if slash {
                    self.element_ended();
                } else {
                    self.open();
                }
            }
            b'/' => self.lex = Lex::StartTag { slash: true },
            b'"' | b'\'' => {
                // A value without a name: not XML, but keep counting.
                self.lex = Lex::AttrValue { quote: byte };
                self.token = 0;
                self.in_reference = false;
            }
            b'=' => self.lex = Lex::StartTag { slash: false },
            _ if is_space(byte) => self.lex = Lex::StartTag { slash: false },
            _ => {
                self.lex = Lex::AttrName;
                self.token = 1;
                if self.tag == Tag::Stanza && self.suppress_to.is_none() {
                    // Held until its length is known.
                    self.holding = true;
                }
            }
        }
    }

    /// An attribute name got too long.
    fn long_token(&mut self, out: &mut Vec<u8>) {
        match self.tag {
            Tag::Payload => self.cut_element(Cut::LongToken, out),
            Tag::Stanza => {
                if !self.attr_dropped {
                    self.hold.clear();
                    self.holding = false;
                    self.attr_dropped = true;
                    self.note_cut(Cut::StanzaAttribute);
                }
            }
            Tag::Stream => {}
        }
    }

    /// A byte of an attribute value, not its closing quote.
    fn value_byte(&mut self, byte: u8, quiet: bool, out: &mut Vec<u8>) {
        if quiet || self.attr_dropped || self.value_cut {
            return;
        }
        match self.tag {
            Tag::Payload => {
                self.token += 1;
                if self.token > self.max_token {
                    self.cut_element(Cut::LongToken, out);
                }
            }
            Tag::Stanza => {
                // Cut before a byte that starts a character, outside a
                // reference.
                let boundary = !self.in_reference && (byte & 0xC0) != 0x80;
                if self.token >= self.max_token
                    && (boundary || self.token >= self.max_token + CUT_SLACK_BYTES)
                {
                    self.value_cut = true;
                    self.note_cut(Cut::StanzaAttribute);
                    return;
                }
                self.token += 1;
                match byte {
                    b'&' => self.in_reference = true,
                    b';' => self.in_reference = false,
                    _ => {}
                }
            }
            Tag::Stream => {}
        }
    }

    /// A start tag (not an empty-element tag) was completed.
    fn open(&mut self) {
        if self.tag_is_stream_header && self.depth <= 1 {
            // A new stream on the same bytes: the old header never closes.
            self.depth = 1;
        } else {
            self.depth = self.depth.saturating_add(1);
        }
    }

    /// An element was closed (by an end tag or as an empty-element tag).
    fn element_ended(&mut self) {
        if self.suppress_to.is_some_and(|to| self.depth <= to) {
            self.suppress_to = None;
        }
        if self.depth < STANZA_DEPTH {
            self.stanza_truncated = false;
        }
    }

    /// Cuts out the element whose start tag is being read, from its `<`:
    /// what was held back of it is forgotten, and a direct child of the
    /// stanza leaves the placeholder in its place.
    fn cut_element(&mut self, why: Cut, out: &mut Vec<u8>) {
        self.hold.clear();
        self.holding = false;
        self.suppress_to = Some(self.depth);
        if self.depth == STANZA_DEPTH && why != Cut::TooDeep {
            out.extend_from_slice(PLACEHOLDER);
        }
        self.note_cut(why);
    }

    /// Counts and logs the first cut in a stanza.
    fn note_cut(&mut self, why: Cut) {
        if self.stanza_truncated {
            return;
        }
        self.stanza_truncated = true;
        let total = TRUNCATED_STANZAS.fetch_add(1, Ordering::Relaxed) + 1;
        let what = match why {
            Cut::TooDeep => format!(
                "cut out elements nested more than {} levels deep",
                self.max_depth - STANZA_DEPTH
            ),
            Cut::LongToken => {
                format!(
                    "cut out an element with a name or attribute over {} bytes",
                    self.max_token
                )
            }
            Cut::LongStartTag => {
                format!(
                    "cut out an element with a start tag over {} bytes",
                    self.max_start_tag
                )
            }
            Cut::StanzaAttribute => {
                format!(
                    "shortened or left out a stanza attribute over {} bytes",
                    self.max_token
                )
            }
        };
        warn!(
            total,
            "{what} in a received stanza; its payload may be refused"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::{Duration, Instant};

    use futures_util::StreamExt;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
    use tokio::time::timeout;
    use tokio_xmpp::xmlstream::{StreamHeader, Timeouts, XmppStreamElement, initiate_stream};
    use xmpp_parsers::iq::Iq;
    use xmpp_parsers::minidom::Element;
    use xmpp_parsers::stanza::Stanza;

    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='s1' \
        version='1.0' xml:lang='en'>";

    /// An AsyncRead that hands out `input` in the given chunk sizes (cycled),
    /// one chunk per read, as a socket would.
    struct Chunked {
        input: Vec<u8>,
        at: usize,
        chunks: Vec<usize>,
        next_chunk: usize,
    }

    impl Chunked {
        fn new(input: &[u8], chunks: &[usize]) -> Self {
            Self {
                input: input.to_vec(),
                at: 0,
                chunks: if chunks.is_empty() {
                    vec![usize::MAX]
                } else {
                    chunks.to_vec()
                },
                next_chunk: 0,
            }
        }
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let chunk = this.chunks[this.next_chunk % this.chunks.len()].max(1);
            this.next_chunk += 1;
            let n = chunk.min(buf.remaining()).min(this.input.len() - this.at);
            buf.put_slice(&this.input[this.at..this.at + n]);
            this.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Everything the guard passes on from `input`, read with buffers of
    /// the given sizes (cycled) while the socket delivers `chunks`.
    fn guarded(input: &[u8], chunks: &[usize], reads: &[usize], limit: usize) -> Vec<u8> {
        let limits = Limits {
            depth: limit,
            token: MAX_TOKEN_BYTES,
            start_tag: MAX_START_TAG_BYTES,
        };
        guarded_with(input, chunks, reads, limits)
    }

    /// [`guarded`] with all three bounds chosen.
    fn guarded_with(input: &[u8], chunks: &[usize], reads: &[usize], limits: Limits) -> Vec<u8> {
        let mut guard = DepthGuard::with_limits(
            Chunked::new(input, chunks),
            limits.depth,
            limits.token,
            limits.start_tag,
        );
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        let mut storage = vec![0; 64 * 1024];
        for i in 0.. {
            let size = reads
                .get(i % reads.len().max(1))
                .copied()
                .unwrap_or(4096)
                .max(1);
            let mut buf = ReadBuf::new(&mut storage[..size]);
            match Pin::new(&mut guard).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                Poll::Ready(Err(e)) => panic!("the test reader cannot fail: {e}"),
                // Only a long run of suppressed reads yields; poll again.
                Poll::Pending => {}
            }
        }
        out
    }

    fn guarded_whole(input: &str, limit: usize) -> String {
        let out = guarded(input.as_bytes(), &[], &[], limit);
        String::from_utf8(out).expect("the guard only drops whole tags and their content")
    }

    fn nested(depth: usize) -> (String, String) {
        ("<a>".repeat(depth), "</a>".repeat(depth))
    }

    /// How many levels of elements hang below `el` along its first children.
    fn depth_below(el: &Element) -> usize {
        let mut depth = 0;
        let mut at = el;
        while let Some(child) = at.children().next() {
            depth += 1;
            at = child;
        }
        depth
    }

    /// Splits the stream header off the guard's output.
    fn after_header(out: &str) -> &str {
        out.strip_prefix(HEADER)
            .unwrap_or_else(|| panic!("the header must pass unchanged: {out:.200}"))
    }

    #[test]
    fn a_stanza_within_the_limit_passes_unchanged() {
        let (open, close) = nested(3);
        let input = format!("{HEADER}<iq type='get' id='1'>{open}x{close}</iq>");
        assert_eq!(guarded_whole(&input, 3), input);
    }

    #[test]
    fn one_level_too_deep_is_cut_out_and_siblings_stay() {
        let input = format!(
            "{HEADER}<iq type='get' id='1'><a><b>t<c k='v'><d/></c>u<e/>v</b></a><f/></iq>"
        );
        let out = guarded_whole(&input, 2);
        assert_eq!(
            after_header(&out),
            "<iq type='get' id='1'><a><b>tuv</b></a><f/></iq>"
        );
    }

    #[test]
    fn quoted_gt_and_slash_in_attributes_do_not_end_tags() {
        let input =
            format!("{HEADER}<iq a='x/>y' b=\"p>'/q\"><a c='/' d=\">\"><b e=\"/\"/></a></iq>");
        assert_eq!(guarded_whole(&input, 2), input);
        // One level less: the empty <b> is cut out, its quotes did not
        // confuse the count.
        let out = guarded_whole(&input, 1);
        assert_eq!(
            after_header(&out),
            "<iq a='x/>y' b=\"p>'/q\"><a c='/' d=\">\"></a></iq>"
        );
    }

    #[test]
    fn markup_inside_cdata_comments_and_instructions_is_not_counted() {
        let input = format!(
            "{HEADER}<message><body><![CDATA[<a><b><c>]]]></body>\
             <!-- <a><b><c> --><?pi <a><b> ?><x>&lt;a&gt;</x></message>"
        );
        assert_eq!(guarded_whole(&input, 1), input);
    }

    #[test]
    fn comments_and_end_tags_at_the_limit_pass_at_any_read_boundary() {
        // At the limit the guard holds a `<` back until it sees what follows.
        let input = format!("{HEADER}<iq><a><!--c--><?p?><![CDATA[d]]></a></iq>");
        for chunk in 1..8 {
            let out = guarded(input.as_bytes(), &[chunk], &[1, 2, 3], 1);
            assert_eq!(String::from_utf8_lossy(&out), input, "chunks of {chunk}");
        }
    }

    #[test]
    fn a_deep_stanza_is_cut_to_exactly_the_limit_and_stays_well_formed() {
        let (open, close) = nested(30_000);
        let input = format!(
            "{HEADER}<iq xmlns='jabber:client' type='get' id='deep'>\
             <q xmlns='urn:example' k='>/'>{open}text{close}</q><tail xmlns='urn:example'/></iq>"
        );
        assert!(input.len() > 200_000);
        let out = guarded_whole(&input, MAX_PAYLOAD_DEPTH);
        let stanza = after_header(&out);
        assert!(stanza.len() < 2_000, "{} bytes let through", stanza.len());
        let iq = Element::from_str(stanza).expect("the truncated stanza is well formed");
        assert_eq!(depth_below(&iq), MAX_PAYLOAD_DEPTH);
        assert!(
            iq.get_child("tail", "urn:example").is_some(),
            "a sibling was lost"
        );
    }

    #[test]
    fn a_stream_restart_resets_the_depth() {
        let limit = 3;
        let (open, close) = nested(limit);
        let exact = format!("<iq>{open}{close}</iq>");
        // After SASL the server sends a new header; the old one never closes.
        let input = format!("{HEADER}<iq><a><a><a><a/></a></a></a></iq>{HEADER}{exact}");
        let out = guarded_whole(&input, limit);
        assert_eq!(
            out,
            format!("{HEADER}<iq><a><a><a></a></a></a></iq>{HEADER}{exact}")
        );
    }

    #[test]
    fn stream_stream_inside_a_stanza_is_an_ordinary_level() {
        // Otherwise a peer could reset the count as often as it likes.
        let deep = "<stream:stream>".repeat(10);
        let close = "</stream:stream>".repeat(10);
        let input = format!("{HEADER}<iq><x xmlns:stream='urn:example'>{deep}{close}</x></iq>");
        let out = guarded_whole(&input, 3);
        assert_eq!(
            after_header(&out),
            "<iq><x xmlns:stream='urn:example'><stream:stream><stream:stream>\
             </stream:stream></stream:stream></x></iq>"
        );
    }

    #[test]
    fn a_lt_held_at_the_end_of_the_stream_is_passed_on() {
        let input = format!("{HEADER}<iq><");
        assert_eq!(guarded_whole(&input, 0), input);
    }

    #[tokio::test]
    async fn nothing_is_buffered_until_the_stanza_ends() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let mut guard = DepthGuard::new(ours);
        let (open, close) = nested(30_000);
        let start = format!("{HEADER}<iq xmlns='jabber:client' type='get' id='1'>{open}");
        theirs.write_all(start.as_bytes()).await.expect("duplex");
        let expected = format!(
            "{HEADER}<iq xmlns='jabber:client' type='get' id='1'>{}",
            "<a>".repeat(MAX_PAYLOAD_DEPTH)
        );
        let mut out = vec![0; expected.len()];
        timeout(Duration::from_secs(5), guard.read_exact(&mut out))
            .await
            .expect("the allowed prefix must come through before the stanza ends")
            .expect("duplex");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        let mut more = [0; 16];
        assert!(
            timeout(Duration::from_millis(200), guard.read(&mut more))
                .await
                .is_err(),
            "the cut-out levels must not come through"
        );
        theirs
            .write_all(format!("{close}</iq>").as_bytes())
            .await
            .expect("duplex");
        drop(theirs);
        let mut rest = String::new();
        guard.read_to_string(&mut rest).await.expect("duplex");
        assert_eq!(rest, format!("{}</iq>", "</a>".repeat(MAX_PAYLOAD_DEPTH)));
    }

    #[tokio::test]
    async fn writes_pass_through_untouched() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut guard = DepthGuard::with_limit(ours, 0);
        let sent = format!("{HEADER}<iq><a><b/></a></iq>");
        guard.write_all(sent.as_bytes()).await.expect("duplex");
        guard.shutdown().await.expect("duplex");
        let mut got = String::new();
        theirs.read_to_string(&mut got).await.expect("duplex");
        assert_eq!(got, sent);
    }

    /// The library's own parser on a guarded stream: before the guard, a
    /// 30,000-level stanza took minutes here in a debug build (5,000
    /// levels: 3.6 s, 10,000: 30 s, 20,000: 136 s).
    #[tokio::test]
    async fn tokio_xmpp_parses_a_guarded_30000_level_stanza_quickly() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let server = format!("{HEADER}<stream:features/>");
        theirs.write_all(server.as_bytes()).await.expect("duplex");
        let stream = initiate_stream(
            BufStream::new(DepthGuard::new(ours)),
            "jabber:client",
            StreamHeader::default(),
            Timeouts::tight(),
        )
        .await
        .expect("stream header");
        let (_, mut stream) = stream
            .recv_features::<XmppStreamElement>()
            .await
            .expect("stream features");
        let (open, close) = nested(30_000);
        let stanza = format!(
            "<iq type='get' id='deep'><q xmlns='urn:example'>{open}{close}</q></iq>\
             <iq type='get' id='next'><ping xmlns='urn:xmpp:ping'/></iq>"
        );
        theirs.write_all(stanza.as_bytes()).await.expect("duplex");
        let started = Instant::now();
        let first = timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the deep stanza must be parsed in well under 10 s");
        let Some(Ok(XmppStreamElement::Stanza(Stanza::Iq(Iq::Get { id, payload, .. })))) = first
        else {
            panic!("expected the deep iq, got {first:?}");
        };
        assert_eq!(id, "deep");
        // The payload is one level below the iq.
        assert_eq!(depth_below(&payload) + 1, MAX_PAYLOAD_DEPTH);
        let second = timeout(Duration::from_secs(10), stream.next()).await;
        assert!(
            matches!(second, Ok(Some(Ok(XmppStreamElement::Stanza(Stanza::Iq(Iq::Get { ref id, .. }))))) if id == "next"),
            "the stream must go on: {second:?}"
        );
        eprintln!(
            "30,000 levels through guard and parser: {:?}",
            started.elapsed()
        );
    }

    /// What tokio-xmpp makes of `stanza` as the first stanza on a fresh
    /// stream, with or without the guard: "ok", "fatal: …" or "none".
    async fn through_tokio_xmpp(stanza: &str, guard: bool) -> String {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let server = format!(
            "{HEADER}<stream:features/>{stanza}<iq type='get' id='next'><ping xmlns='urn:xmpp:ping'/></iq>"
        );
        theirs.write_all(server.as_bytes()).await.expect("duplex");
        let io: Box<dyn tokio_xmpp::connect::AsyncReadAndWrite + Send> = if guard {
            Box::new(BufStream::new(DepthGuard::new(ours)))
        } else {
            Box::new(BufStream::new(ours))
        };
        let stream = initiate_stream(
            io,
            "jabber:client",
            StreamHeader::default(),
            Timeouts::tight(),
        )
        .await
        .expect("stream header");
        let (_, mut stream) = stream
            .recv_features::<XmppStreamElement>()
            .await
            .expect("stream features");
        let first = timeout(Duration::from_secs(10), stream.next()).await;
        match first {
            Ok(Some(Ok(XmppStreamElement::Stanza(_)))) => "ok".into(),
            Ok(Some(Ok(other))) => format!("other: {other:?}"),
            Ok(Some(Err(e))) => format!("error: {e:?}"),
            Ok(None) => "ended".into(),
            Err(_) => "timeout".into(),
        }
    }

    /// Each name or attribute rxml refuses past 8 KiB ends tokio-xmpp's
    /// stream unguarded and passes guarded; long text, CDATA and end tags
    /// never needed the guard, since rxml splits text.
    #[tokio::test]
    async fn tokio_xmpp_survives_names_and_attributes_over_its_token_limit() {
        let long = "A".repeat(10 * 1024);
        let iq =
            |attrs: &str, payload: &str| format!("<iq type='get' id='1'{attrs}>{payload}</iq>");
        let fatal = [
            iq("", &format!("<q xmlns='urn:e' x='{long}'/>")),
            iq("", &format!("<q xmlns='urn:e' {long}='x'/>")),
            iq("", &format!("<{long} xmlns='urn:e'/>")),
            iq("", &format!("<q xmlns='urn:e'><r x='{long}'/></q>")),
            // 9,000 bytes once decoded.
            iq(
                "",
                &format!("<q xmlns='urn:e' x='{}'/>", "&amp;".repeat(9_000)),
            ),
            iq(&format!(" x='{long}'"), "<q xmlns='urn:e'/>"),
            iq(&format!(" {long}='x'"), "<q xmlns='urn:e'/>"),
            format!("<iq type='get' id='{long}'><q xmlns='urn:e'/></iq>"),
            format!("<message><x xmlns='urn:e' v='{long}'/></message>"),
        ];
        for stanza in &fatal {
            let bare = through_tokio_xmpp(stanza, false).await;
            assert!(
                bare.contains("long name or reference"),
                "{bare}: {stanza:.80}"
            );
            let guarded = through_tokio_xmpp(stanza, true).await;
            assert_eq!(guarded, "ok", "{stanza:.80}");
        }
        let harmless = [
            iq("", &format!("<q xmlns='urn:e'>{long}{long}</q>")),
            iq(
                "",
                &format!("<q xmlns='urn:e'><![CDATA[{long}{long}]]></q>"),
            ),
            iq("", &format!("<q xmlns='urn:e' x='{}'/>", "A".repeat(8_192))),
            iq(
                "",
                &format!("<q xmlns='urn:e' x='{}'/>", "&amp;".repeat(2_100)),
            ),
        ];
        for stanza in &harmless {
            assert_eq!(
                through_tokio_xmpp(stanza, false).await,
                "ok",
                "{stanza:.80}"
            );
        }
    }

    /// With the real bounds: exactly [`MAX_TOKEN_BYTES`] passes untouched
    /// everywhere, one byte more is cut.
    #[test]
    fn the_real_bounds_pass_exactly_max_token_bytes() {
        let at = "v".repeat(MAX_TOKEN_BYTES);
        let name = "n".repeat(MAX_TOKEN_BYTES);
        let input = format!(
            "{HEADER}<iq type='get' id='{at}' {name}='x'><q xmlns='urn:e' a='{at}'>\
             <{name}/><r {name}='x'/></q></iq>"
        );
        for chunk in [1, 7, 4096, 8192] {
            let out = guarded(input.as_bytes(), &[chunk], &[1000], MAX_PAYLOAD_DEPTH);
            assert!(out == input.as_bytes(), "chunks of {chunk}");
        }
        let over = format!("{at}v");
        let input = format!(
            "{HEADER}<iq type='get' id='{over}'><q xmlns='urn:e' a='{over}'/></iq>\
             <iq type='get' id='2'><q xmlns='urn:e'><r a='{over}'><s/></r><t/></q></iq>"
        );
        let out = guarded_whole(&input, MAX_PAYLOAD_DEPTH);
        assert_eq!(
            after_header(&out),
            format!(
                "<iq type='get' id='{at}'><cut xmlns='urn:attache:guard'/></iq>\
                 <iq type='get' id='2'><q xmlns='urn:e'><t/></q></iq>"
            )
        );
    }

    #[test]
    fn a_long_stanza_value_is_cut_after_whole_characters_and_references() {
        // Two-byte characters from an odd offset: the bound falls inside one.
        let wide = format!("x{}", "é".repeat(MAX_TOKEN_BYTES));
        let refs = "&amp;".repeat(MAX_TOKEN_BYTES);
        for value in [wide, refs] {
            let input = format!(
                "{HEADER}<message xmlns='jabber:client' v='{value}'><body>hi</body></message>"
            );
            let out = guarded_whole(&input, MAX_PAYLOAD_DEPTH);
            let stanza = after_header(&out);
            let kept = stanza
                .strip_prefix("<message xmlns='jabber:client' v='")
                .and_then(|rest| rest.strip_suffix("'><body>hi</body></message>"))
                .unwrap_or_else(|| panic!("not shortened in place: {stanza:.100}"));
            assert!(value.starts_with(kept));
            assert!(
                (MAX_TOKEN_BYTES..MAX_TOKEN_BYTES + 5).contains(&kept.len()),
                "{} bytes",
                kept.len()
            );
            assert!(!kept.ends_with('&') && (kept.ends_with(';') || !kept.contains('&')));
            Element::from_str(stanza).expect("well formed");
        }
    }

    /// A node of a generated stanza.
    #[derive(Debug, Clone)]
    enum Node {
        Element {
            name: &'static str,
            /// (name, value, quote); names get their index appended.
            attrs: Vec<(&'static str, String, char)>,
            children: Vec<Node>,
            /// How a childless element is written: `<a/>`, `<a />`, `<a></a>`.
            empty: u8,
        },
        Text(String),
        Cdata(String),
        Comment(String),
        Pi(String),
    }

    /// The guard's bounds for one generated case: depth below the stanza,
    /// token and payload start tag length.
    #[derive(Debug, Clone, Copy)]
    struct Limits {
        depth: usize,
        token: usize,
        start_tag: usize,
    }

    const UNLIMITED: Limits = Limits {
        depth: usize::MAX,
        token: usize::MAX,
        start_tag: usize::MAX,
    };

    /// What is left of a stanza attribute value over `token` bytes: the
    /// shortest prefix of at least `token` bytes that ends on a character
    /// boundary outside any `&...;`, or `token` + the slack bytes
    /// regardless.
    fn shortened(value: &str, token: usize) -> &str {
        let bytes = value.as_bytes();
        for at in token..bytes.len() {
            let before = &bytes[..at];
            let amp = before.iter().rposition(|&b| b == b'&');
            let semi = before.iter().rposition(|&b| b == b';');
            let in_reference = amp.is_some() && (semi.is_none() || amp > semi);
            let boundary = !in_reference && value.is_char_boundary(at);
            if boundary || at >= token + CUT_SLACK_BYTES {
                return std::str::from_utf8(&bytes[..at]).unwrap_or("<not UTF-8>");
            }
        }
        value
    }

    /// Writes `node` as it sits `level` levels below the stanza, as the
    /// guard with `limits` should pass it on: elements too deep, or with a
    /// name, attribute or start tag too long, left out (a direct child of
    /// the stanza replaced by the placeholder), the stanza's own long
    /// attribute values shortened and long attribute names left out.
    fn render(node: &Node, level: usize, limits: Limits, out: &mut String) {
        match node {
            Node::Element {
                name,
                attrs,
                children,
                empty,
            } => {
                if level > limits.depth {
                    return;
                }
                let mut tag = format!("<{name}");
                let mut too_long = name.len() > limits.token;
                for (i, (attr, value, quote)) in attrs.iter().enumerate() {
                    let attr = format!("{attr}{i}");
                    too_long |= attr.len() > limits.token || value.len() > limits.token;
                    if level == 0 && attr.len() > limits.token {
                        tag.push(' ');
                    } else if level == 0 {
                        let value = shortened(value, limits.token);
                        tag.push_str(&format!(" {attr}={quote}{value}{quote}"));
                    } else {
                        tag.push_str(&format!(" {attr}={quote}{value}{quote}"));
                    }
                }
                let childless = children.is_empty() && *empty < 2;
                tag.push_str(match (childless, *empty) {
                    (true, 0) => "/>",
                    (true, _) => " />",
                    (false, _) => ">",
                });
                if level > 0 && (too_long || tag.len() > limits.start_tag) {
                    if level == 1 {
                        out.push_str(std::str::from_utf8(PLACEHOLDER).unwrap_or_default());
                    }
                    return;
                }
                out.push_str(&tag);
                if childless {
                    return;
                }
                for child in children {
                    render(child, level + 1, limits, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            Node::Text(text) => out.push_str(text),
            Node::Cdata(text) => out.push_str(&format!("<![CDATA[{text}]]>")),
            Node::Comment(text) => out.push_str(&format!("<!--{text}-->")),
            Node::Pi(text) => out.push_str(&format!("<?pi {text}?>")),
        }
    }

    fn text_from(alphabet: &'static str) -> impl Strategy<Value = String> {
        let chars: Vec<char> = alphabet.chars().collect();
        prop::collection::vec(prop::sample::select(chars), 0..12)
            .prop_map(|chars| chars.into_iter().collect())
    }

    /// Up to 30 pieces: sometimes over a small token bound, with two-byte
    /// characters and references to cut around.
    fn long_text() -> impl Strategy<Value = String> {
        let pieces = vec![
            "a", "b", " ", ">", "/", "=", "é", "&amp;", "&lt;", "&#x20AC;", "€",
        ];
        prop::collection::vec(prop::sample::select(pieces), 0..30)
            .prop_map(|pieces| pieces.concat())
    }

    const ELEMENT_NAMES: &[&str] = &["a", "b:c", "stream:stream", "x", "element-with-a-long-name"];

    fn attribute() -> impl Strategy<Value = (&'static str, String, char)> {
        (
            prop::sample::select(vec!["a", "b:c", "attribute-with-a-long-name"]),
            prop_oneof![text_from("ab >/='\"&;"), long_text()],
            prop::bool::ANY,
        )
            .prop_map(|(name, value, double)| {
                let quote = if double { '"' } else { '\'' };
                (name, value.replace(quote, ""), quote)
            })
    }

    fn leaf() -> impl Strategy<Value = Node> {
        prop_oneof![
            4 => text_from("ab >/'\"]-?=&;").prop_map(Node::Text),
            1 => text_from("ab<>/]-?!").prop_map(|t| Node::Cdata(t.replace("]]>", "]] >"))),
            1 => text_from("ab<>/-]?").prop_map(|t| {
                let mut t = t.replace('-', " -");
                t.push('x');
                Node::Comment(t)
            }),
            1 => text_from("ab<>/-?").prop_map(|t| Node::Pi(t.replace("?>", "? >"))),
            3 => (
                prop::sample::select(ELEMENT_NAMES),
                prop::collection::vec(attribute(), 0..3),
                0u8..3,
            )
                .prop_map(|(name, attrs, empty)| Node::Element {
                    name,
                    attrs,
                    children: Vec::new(),
                    empty,
                }),
        ]
    }

    fn node() -> impl Strategy<Value = Node> {
        leaf().prop_recursive(8, 64, 4, |inner| {
            (
                prop::sample::select(ELEMENT_NAMES),
                prop::collection::vec(attribute(), 0..3),
                prop::collection::vec(inner, 0..4),
                0u8..3,
            )
                .prop_map(|(name, attrs, children, empty)| Node::Element {
                    name,
                    attrs,
                    children,
                    empty,
                })
        })
    }

    /// What can follow the stream header: stanzas (with attributes of their
    /// own), whitespace keepalives and stream restarts.
    #[derive(Debug, Clone)]
    enum Segment {
        Stanza(&'static str, Vec<(&'static str, String, char)>, Vec<Node>),
        Whitespace,
        Restart,
    }

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            6 => (
                prop::sample::select(vec!["iq", "message", "presence"]),
                prop::collection::vec(attribute(), 0..3),
                prop::collection::vec(node(), 0..4),
            )
                .prop_map(|(name, attrs, children)| Segment::Stanza(name, attrs, children)),
            1 => Just(Segment::Whitespace),
            1 => Just(Segment::Restart),
        ]
    }

    fn render_stream(segments: &[Segment], limits: Limits) -> String {
        let mut out = String::from(HEADER);
        for segment in segments {
            match segment {
                Segment::Stanza(name, attrs, children) => {
                    let mut attrs = attrs.clone();
                    attrs.push(("t", "t'>/".into(), '"'));
                    let stanza = Node::Element {
                        name,
                        attrs,
                        children: children.clone(),
                        empty: 2,
                    };
                    render(&stanza, 0, limits, &mut out);
                }
                Segment::Whitespace => out.push_str(" \n"),
                Segment::Restart => out.push_str(HEADER),
            }
        }
        out
    }

    fn sizes() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..40, 1..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn shallow_streams_pass_unchanged_at_any_read_boundary(
            segments in prop::collection::vec(segment(), 0..6),
            chunks in sizes(),
            reads in sizes(),
        ) {
            let input = render_stream(&segments, UNLIMITED);
            let out = guarded(input.as_bytes(), &chunks, &reads, MAX_PAYLOAD_DEPTH);
            prop_assert_eq!(String::from_utf8_lossy(&out), input);
        }

        #[test]
        fn deeper_elements_are_cut_out_exactly_at_any_read_boundary(
            segments in prop::collection::vec(segment(), 0..6),
            limit in 0usize..5,
            chunks in sizes(),
            reads in sizes(),
        ) {
            let input = render_stream(&segments, UNLIMITED);
            let depth_only = Limits { depth: limit, ..UNLIMITED };
            let expected = render_stream(&segments, depth_only);
            let out = guarded(input.as_bytes(), &chunks, &reads, limit);
            prop_assert_eq!(String::from_utf8_lossy(&out), expected);
        }

        #[test]
        fn long_tokens_and_start_tags_are_cut_exactly_at_any_read_boundary(
            segments in prop::collection::vec(segment(), 0..6),
            depth in 0usize..5,
            token in 4usize..24,
            start_tag in 16usize..80,
            chunks in sizes(),
            reads in sizes(),
        ) {
            let input = render_stream(&segments, UNLIMITED);
            let limits = Limits { depth, token, start_tag };
            let expected = render_stream(&segments, limits);
            let out = guarded_with(input.as_bytes(), &chunks, &reads, limits);
            prop_assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }
}
