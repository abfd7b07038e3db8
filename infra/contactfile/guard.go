package contactfile

import "io"

// guard sits between the decoded text and encoding/csv. encoding/csv holds a whole record in
// memory however long it is, and an unterminated quote makes the rest of the file one record;
// the guard bounds what csv ever sees of one record. It follows csv's record syntax (with
// LazyQuotes) byte by byte, and when a record outgrows the limit it drops the rest of that
// physical line, closes the record for csv and notes its number, so that the Reader reports
// it as a RowError and reading resumes on the next line.
//
// It also normalises the text csv sees: CRLF and lone CR (old Mac exports) become LF, and
// NUL bytes, which PostgreSQL text cannot hold, are dropped. Line numbers stay those of the
// file.
type guard struct {
	src   io.Reader
	buf   []byte
	in    []byte // decoded input not yet processed
	err   error  // error of src, returned once the input is used up
	comma byte
	max   int

	state    recState
	size     int // bytes of the current record so far
	records  int // records started so far
	afterCR  bool
	skipping bool
	closing  string // what ends the truncated record for csv
	tail     []byte // output queued before further input
	// truncated lists, in order, the numbers of records cut short not yet asked about.
	truncated []int
	// special marks the bytes that end a run of field content: NUL, CR, LF, quote, comma.
	special [256]bool
}

type recState uint8

const (
	atLineStart recState = iota // between records: blank lines are no records
	atFieldStart
	inUnquoted
	inQuoted
	quoteInQuoted // a quote inside a quoted field: end, escape or (lazily) literal
)

func newGuard(src io.Reader, comma byte, maxRecord int) *guard {
	g := &guard{src: src, buf: make([]byte, 8<<10), comma: comma, max: maxRecord}
	for _, b := range []byte{0, '\r', '\n', '"', comma} {
		g.special[b] = true
	}
	return g
}

func (g *guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n := 0
		if len(g.tail) > 0 {
			n = copy(p, g.tail)
			g.tail = g.tail[n:]
		}
		if len(g.tail) == 0 && len(g.in) > 0 && n < len(p) {
			n += g.process(p[n:])
		}
		if n > 0 || len(g.tail) > 0 {
			return n, nil
		}
		if len(g.in) > 0 {
			continue // everything processed so far was dropped
		}
		if g.err != nil {
			if g.skipping {
				g.endSkip("")
				continue
			}
			return 0, g.err
		}
		k, err := g.src.Read(g.buf)
		g.in, g.err = g.buf[:k], err
		if k == 0 && err == nil {
			return 0, nil
		}
	}
}

// process moves input to out until out is full, the input is used up, or output got queued.
func (g *guard) process(out []byte) int {
	n, i := 0, 0
	for ; i < len(g.in) && n < len(out) && len(g.tail) == 0; i++ {
		b := g.in[i]
		if b == 0 {
			continue
		}
		if g.afterCR {
			g.afterCR = false
			if b == '\n' {
				continue
			}
		}
		if b == '\r' {
			g.afterCR = true
			b = '\n'
		}
		if g.skipping {
			if b == '\n' {
				g.endSkip("\n")
			}
			continue
		}
		if g.step(b) {
			out[n] = b
			n++
		}
		// Inside a field, copy the run up to the next byte that matters in one go.
		if (g.state == inUnquoted || g.state == inQuoted) && !g.skipping {
			j := i + 1
			limit := min(len(g.in), j+len(out)-n, j+g.max-g.size)
			for j < limit && !g.special[g.in[j]] {
				j++
			}
			if k := j - (i + 1); k > 0 {
				n += copy(out[n:], g.in[i+1:j])
				g.size += k
				g.afterCR = false // what followed a CR was no LF
				i = j - 1
			}
		}
	}
	g.in = g.in[i:]
	return n
}

// step advances the record syntax by one byte and reports whether csv gets to see it.
func (g *guard) step(b byte) bool {
	if g.state == atLineStart {
		if b == '\n' {
			return true // a blank line, which csv skips
		}
		g.records++
		g.size = 0
		g.state = atFieldStart
	}
	if b == '\n' && g.state != inQuoted {
		g.state = atLineStart
		return true
	}
	g.size++
	if g.size > g.max {
		g.truncated = append(g.truncated, g.records)
		g.skipping = true
		g.closing = ""
		if g.state == inQuoted {
			g.closing = `"` // `"` then a line break ends a quoted field and the record
		}
		if b == '\n' {
			g.endSkip("\n")
		}
		return false
	}
	switch g.state {
	case atFieldStart:
		switch b {
		case '"':
			g.state = inQuoted
		case g.comma:
		default:
			g.state = inUnquoted
		}
	case inUnquoted:
		if b == g.comma {
			g.state = atFieldStart
		}
	case inQuoted:
		if b == '"' {
			g.state = quoteInQuoted
		}
	case quoteInQuoted:
		if b == g.comma {
			g.state = atFieldStart
		} else {
			g.state = inQuoted // `""` is an escaped quote, anything else a literal one
		}
	}
	return true
}

// endSkip ends a truncated record for csv, followed by the line break that ended the skip
// (none at the end of the input).
func (g *guard) endSkip(lineBreak string) {
	g.skipping = false
	g.state = atLineStart
	g.tail = append(append(g.tail[:0], g.closing...), lineBreak...)
}

// wasTruncated reports whether record number rec (1-based, in csv's count) was cut short.
func (g *guard) wasTruncated(rec int) bool {
	for len(g.truncated) > 0 && g.truncated[0] < rec {
		g.truncated = g.truncated[1:]
	}
	if len(g.truncated) > 0 && g.truncated[0] == rec {
		g.truncated = g.truncated[1:]
		return true
	}
	return false
}
