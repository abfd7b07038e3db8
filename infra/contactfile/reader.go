// Package contactfile reads the contact lists people bring to MyDigiBiz: CSV and tab-separated
// exports of phones, Google Contacts, Outlook and spreadsheets. It detects the text encoding,
// the delimiter and what each column means, and streams the rows one by one, so that a file of
// any size is read in bounded memory and a bad row costs that row, not the import.
//
// The package only parses: phone numbers come out as written, to be normalised by the caller
// with the workspace's default country (domain/contact.NormalizePhone).
package contactfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// sniffBytes is the look-ahead used to detect encoding, delimiter and columns; it is the
	// only part of the file held at once besides the current row.
	sniffBytes = 64 << 10
	// DefaultMaxRowBytes is the longest row (after decoding to UTF-8) read when
	// Opts.MaxRowBytes is zero. Real contact rows are far below it; a longer one is nearly
	// always an unterminated quote swallowing the rest of the file.
	DefaultMaxRowBytes = 64 << 10
)

// Opts tunes a Reader; the zero value detects everything.
type Opts struct {
	// Encoding forces the text encoding (one of the Encoding constants, case-insensitive);
	// empty detects it.
	Encoding Encoding
	// Delimiter forces the field separator (an ASCII character); zero sniffs it among
	// ',', ';', tab and '|'.
	Delimiter rune
	// MaxRowBytes bounds one row; a longer row is skipped with a *RowError. Zero means
	// DefaultMaxRowBytes.
	MaxRowBytes int
}

// Row is one contact as the file states it.
type Row struct {
	// Line is the 1-based line of the row in the file as an editor shows it (the header is
	// line 1), so that errors point the user at the right place.
	Line int
	// Name is the full name column or, when there is none, first, middle and last name
	// joined.
	Name string
	// Email is the first e-mail address of the row.
	Email string
	// Phones are all phone numbers of the row as written: those of mobile and WhatsApp columns
	// first (WhatsApp reaches mobiles, and importers take the first valid number), then the
	// others, each in column order; empty and repeated ones dropped and Google's " ::: "
	// multi-values split.
	Phones []string
	// Groups are the row's groups, tags, labels or categories, trimmed and de-duplicated
	// ignoring case; Google's "* myContacts" and "* starred" system labels are dropped.
	Groups []string
	// Custom holds the non-empty values of columns the reader does not know, keyed by the
	// header text (or "Column N" when there is none); nil when there are none.
	Custom map[string]string
}

// RowError is a problem with one row; the Reader can go on past it.
type RowError struct {
	Line int
	Msg  string
}

func (e *RowError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Msg }

// Reader streams the rows of a contact file.
type Reader struct {
	header  Header
	columns []Column
	csv     *csv.Reader
	guard   *guard
	maxRow  int
	records int // csv records read, for matching the guard's truncation notes
	pending *Row
	err     error
	colKeys []string // compactKey of each column title, for isPlaceholder
	// phoneType maps a phone column to the column that says what kind of number it holds
	// (Google's "Phone 1 - Type" beside "Phone 1 - Value").
	phoneType map[int]int
	source    *byteCounter
}

// byteCounter counts the bytes read through it.
type byteCounter struct {
	r io.Reader
	n int64
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// BytesRead is how many bytes of the file the reader has taken in so far: a little ahead of the
// rows handed out (it reads in blocks), and the file's size once Next reported io.EOF. For
// showing progress.
func (r *Reader) BytesRead() int64 { return r.source.n }

// NewReader detects the format of r from its first 64 KiB and reads its header. The
// returned error is about the file as a whole (unreadable, or its first row too long to
// tell a header from data); rows' errors come from Next.
func NewReader(r io.Reader, opts Opts) (*Reader, error) {
	maxRow := opts.MaxRowBytes
	if maxRow <= 0 {
		maxRow = DefaultMaxRowBytes
	}
	if d := opts.Delimiter; d != 0 && (d >= utf8.RuneSelf || d == '"' || d == '\r' || d == '\n' || d == 0) {
		return nil, fmt.Errorf("contact file delimiter %q: must be an ASCII character other than a quote or line break", d)
	}

	// The look-ahead is read first and then replayed in front of the rest of r.
	counted := &byteCounter{r: r}
	r = counted
	sample, err := io.ReadAll(io.LimitReader(r, sniffBytes))
	if err != nil {
		return nil, fmt.Errorf("reading contact file: %w", err)
	}
	atEOF := len(sample) < sniffBytes
	src := io.MultiReader(bytes.NewReader(sample), r)

	enc, err := pickEncoding(sample, opts.Encoding)
	if err != nil {
		return nil, err
	}
	text := sampleText(enc, sample, atEOF)
	if err := checkText(sample, text); err != nil {
		return nil, err
	}

	delim := byte(opts.Delimiter)
	sepLine := false
	if d, ok := sepDirective(text); ok {
		// Excel's "sep=;" first line names the delimiter and is not part of the table.
		sepLine = true
		if delim == 0 {
			delim = d
		}
	}
	if delim == 0 {
		delim = sniffDelimiter(text)
	}

	g := newGuard(enc.decoder(src), delim, maxRow)
	c := csv.NewReader(g)
	c.Comma = rune(delim)
	c.LazyQuotes = true
	c.FieldsPerRecord = -1
	c.ReuseRecord = true

	rd := &Reader{
		header: Header{Encoding: enc.name, Delimiter: rune(delim)},
		csv:    c,
		guard:  g,
		maxRow: maxRow,
		source: counted,
	}
	if sepLine {
		if _, _, err := rd.read(); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	first, line, err := rd.read()
	if errors.Is(err, io.EOF) {
		return rd, nil // an empty file: Next reports io.EOF
	}
	var rowErr *RowError
	if errors.As(err, &rowErr) {
		return nil, fmt.Errorf("reading contact file header: first row is longer than %d bytes", maxRow)
	}
	if err != nil {
		return nil, err
	}

	if isHeader(first) {
		rd.header.Present = true
		rd.header.Columns = headerColumns(first)
	} else {
		rd.header.Columns = inferColumns(sampleRecords(text, delim, sepLine))
	}
	rd.columns = rd.header.Columns
	rd.colKeys = make([]string, len(rd.columns))
	for i, col := range rd.columns {
		rd.colKeys[i] = compactKey(col.Title)
	}
	rd.phoneType = phoneTypeColumns(rd.columns, rd.colKeys)
	if !rd.header.Present {
		if row, ok := rd.mapRow(first, line); ok {
			rd.pending = &row
		}
	}
	return rd, nil
}

// Header returns the detected format and column mapping, for showing the user how the file
// was understood.
func (r *Reader) Header() Header {
	h := r.header
	h.Columns = slices.Clone(h.Columns)
	return h
}

// Next returns the next row, skipping blank ones, and io.EOF after the last. A *RowError is
// about that row only and Next may be called again; any other error ends the file.
func (r *Reader) Next() (Row, error) {
	if r.pending != nil {
		row := *r.pending
		r.pending = nil
		return row, nil
	}
	if r.err != nil {
		return Row{}, r.err
	}
	for {
		rec, line, err := r.read()
		if err != nil {
			if _, ok := err.(*RowError); !ok {
				r.err = err
			}
			return Row{}, err
		}
		if row, ok := r.mapRow(rec, line); ok {
			return row, nil
		}
	}
}

// read returns the next record and its line.
func (r *Reader) read() ([]string, int, error) {
	rec, err := r.csv.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading contact file: %w", err)
	}
	r.records++
	line, _ := r.csv.FieldPos(0)
	if r.guard.wasTruncated(r.records) {
		return nil, line, &RowError{Line: line, Msg: fmt.Sprintf("row is longer than %d bytes, skipped", r.maxRow)}
	}
	return rec, line, nil
}

// isMobileTitle reports whether a phone column holds mobile (or WhatsApp) numbers, which go
// first: WhatsApp reaches mobiles, and the importer uses a row's first valid number.
func isMobileTitle(title string) bool {
	t := strings.ToLower(title)
	for _, w := range []string{"mobile", "mobil", "cell", "whatsapp", "handy", "móvil", "celular"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// phoneTypeColumns pairs numbered phone columns with the columns that type them: Google writes
// "Phone 1 - Type" (Mobile, Work, Home…) beside "Phone 1 - Value", so its titles say nothing of
// which number is the mobile.
func phoneTypeColumns(columns []Column, keys []string) map[int]int {
	typeOf := map[string]int{}
	for i, k := range keys {
		if base, num, suffix := numberedKey(k); num != "" && (suffix == "type" || suffix == "label") {
			typeOf[base+num] = i
		}
	}
	var out map[int]int
	for i, col := range columns {
		if col.Field != FieldPhone {
			continue
		}
		if base, num, _ := numberedKey(keys[i]); num != "" {
			if t, ok := typeOf[base+num]; ok {
				if out == nil {
					out = map[int]int{}
				}
				out[i] = t
			}
		}
	}
	return out
}

// mapRow turns a record into a Row; ok is false for a row without any value.
func (r *Reader) mapRow(rec []string, line int) (row Row, ok bool) {
	row.Line = line
	var first, middle, last string
	var mobiles []string
	for i, cell := range rec {
		v := strings.TrimSpace(cell)
		if v == "" {
			continue
		}
		ok = true
		col := r.column(i)
		switch col.Field {
		case FieldName:
			if row.Name == "" {
				row.Name = v
			} else {
				row.Custom = addCustom(row.Custom, col.key(), v)
			}
		case FieldFirstName:
			first = joinSpace(first, v)
		case FieldMiddleName:
			middle = joinSpace(middle, v)
		case FieldLastName:
			last = joinSpace(last, v)
		case FieldPhone:
			t, typed := r.phoneType[i]
			mobile := isMobileTitle(col.Title) || typed && t < len(rec) && isMobileTitle(rec[t])
			for _, part := range phoneParts(v) {
				if mobile {
					mobiles = appendMulti(mobiles, part)
				} else {
					row.Phones = appendMulti(row.Phones, part)
				}
			}
		case FieldEmail:
			for row.Email == "" && v != "" {
				// The first address of the cell; Google puts several in one.
				first, rest, _ := strings.Cut(v, googleSep)
				row.Email, v = strings.TrimSpace(first), strings.TrimSpace(rest)
			}
			if v != "" {
				// Kept, not dropped: the row has one e-mail field, the user may have more.
				row.Custom = addCustom(row.Custom, col.key(), v)
			}
		case FieldGroups:
			row.Groups = appendGroups(row.Groups, v)
		case FieldIgnored:
		default:
			if i >= len(r.colKeys) || !isPlaceholder(r.colKeys[i], v) {
				row.Custom = addCustom(row.Custom, col.key(), v)
			}
		}
	}
	if row.Name == "" {
		row.Name = joinSpace(joinSpace(first, middle), last)
	}
	if len(mobiles) > 0 {
		for _, p := range row.Phones {
			mobiles = appendMulti(mobiles, p)
		}
		row.Phones = mobiles
	}
	return row, ok
}

// column returns the mapping of column i, also for cells beyond the header of a ragged row.
func (r *Reader) column(i int) Column {
	if i < len(r.columns) {
		return r.columns[i]
	}
	return Column{Index: i, Field: FieldCustom}
}

func joinSpace(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// googleSep separates several values in one cell of a Google Contacts export.
const googleSep = ":::"

// phoneParts splits a phone cell that holds several numbers ("0151 1234567 / 030 123456",
// "…, …", one a line) into them, when every part looks like a number; a cell that does not split
// that way is one value ("0151/1234567" is one number).
func phoneParts(v string) []string {
	if strings.Contains(v, googleSep) {
		return []string{v} // appendMulti splits Google's separator
	}
	parts := strings.FieldsFunc(strings.ReplaceAll(v, " / ", "\n"), func(r rune) bool {
		return r == ',' || r == ';' || r == '|' || r == '\n' || r == '\r'
	})
	if len(parts) < 2 {
		return []string{v}
	}
	for i, p := range parts {
		if parts[i] = strings.TrimSpace(p); !looksLikePhone(parts[i]) {
			return []string{v}
		}
	}
	return parts
}

// appendMulti appends the values of a cell, split at Google's separator, leaving out
// repetitions (Outlook often has the mobile number again as "Primary Phone").
func appendMulti(dst []string, v string) []string {
	if !strings.Contains(v, googleSep) {
		if dst == nil {
			dst = make([]string, 0, 2)
		}
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
		return dst
	}
	for part := range strings.SplitSeq(v, googleSep) {
		if part = strings.TrimSpace(part); part != "" && !slices.Contains(dst, part) {
			dst = append(dst, part)
		}
	}
	return dst
}

// MaxGroupsPerRow bounds the groups one row puts its contact in; further names in the row are
// ignored. A contact list names a handful; a cell of thousands of tags is a mistake, and each
// new name becomes a group.
const MaxGroupsPerRow = 20

// appendGroups appends the groups of a cell, at most MaxGroupsPerRow in all. Google separates
// labels with " ::: "; Outlook separates categories with ";" and spreadsheets tags with "," or
// ";", so those split a cell without Google's separator.
func appendGroups(dst []string, v string) []string {
	google := strings.Contains(v, googleSep)
	for v != "" && len(dst) < MaxGroupsPerRow {
		var p string
		if google {
			p, v, _ = strings.Cut(v, googleSep)
		} else if k := strings.IndexAny(v, ";,"); k >= 0 {
			p, v = v[:k], v[k+1:]
		} else {
			p, v = v, ""
		}
		p = strings.TrimSpace(p)
		if rest, ok := strings.CutPrefix(p, "* "); ok {
			// Google marks its own labels with "* ". "myContacts" and "starred" are
			// bookkeeping, not groups a user made; the old system groups ("* Friends")
			// are meant as groups.
			rest = strings.TrimSpace(rest)
			if label := strings.ReplaceAll(rest, " ", ""); strings.EqualFold(label, "myContacts") || strings.EqualFold(label, "starred") {
				continue
			}
			p = rest
		}
		if p == "" || slices.ContainsFunc(dst, func(g string) bool { return strings.EqualFold(g, p) }) {
			continue // "vip, VIP" is one group to the person who typed it
		}
		if dst == nil {
			dst = make([]string, 0, 4)
		}
		dst = append(dst, p)
	}
	return dst
}

// addCustom sets a custom field, joining the values of same-named columns.
func addCustom(m map[string]string, key, v string) map[string]string {
	if m == nil {
		m = make(map[string]string, 4)
	}
	if old, ok := m[key]; ok {
		v = old + "; " + v
	}
	m[key] = v
	return m
}
