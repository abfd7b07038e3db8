package contactfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReader feeds arbitrary bytes to the reader: it must not panic, must end with io.EOF
// after at most one result per line, must only ever fail a row (not the file, which cannot
// fail to read here, unless it is refused as not text at all), and must hand out text PostgreSQL
// can store.
func FuzzReader(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Add([]byte("a,\"b\n\"\"\"c\",d\r\n\"\n"), true)
	f.Add([]byte("sep=;\n\"x;y\";1"), false)
	f.Add([]byte("\xff\xfe\x00"), false)

	f.Fuzz(func(t *testing.T, data []byte, smallRows bool) {
		opts := Opts{}
		if smallRows {
			opts.MaxRowBytes = 16
		}
		rd, err := NewReader(bytes.NewReader(data), opts)
		if err != nil {
			var fe *FileError
			if !strings.Contains(err.Error(), "longer than") && !errors.As(err, &fe) {
				t.Fatalf("NewReader: %v", err)
			}
			return
		}
		checkText := func(what, s string) {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("%s %q is not storable text", what, s)
			}
		}
		for _, c := range rd.Header().Columns {
			checkText("title", c.Title)
		}
		lastLine := 0
		// UTF-16 doubles as much text per byte as it halves; a result per input byte,
		// plus the end, bounds every encoding.
		for i := 0; ; i++ {
			if i > len(data)+2 {
				t.Fatalf("no io.EOF after %d results from %d bytes", i, len(data))
			}
			row, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			line := row.Line
			var rowErr *RowError
			switch {
			case errors.As(err, &rowErr):
				line = rowErr.Line
			case err != nil:
				t.Fatalf("Next: %v", err)
			}
			if line <= lastLine {
				t.Fatalf("line %d after line %d", line, lastLine)
			}
			lastLine = line
			if err != nil {
				continue
			}
			checkText("name", row.Name)
			checkText("email", row.Email)
			for _, list := range [][]string{row.Phones, row.Groups} {
				for _, v := range list {
					checkText("value", v)
					if v == "" || strings.TrimSpace(v) != v {
						t.Fatalf("untrimmed value %q", v)
					}
				}
			}
			for k, v := range row.Custom {
				checkText("custom key", k)
				checkText("custom value", v)
				if k == "" || v == "" {
					t.Fatalf("empty custom field %q=%q", k, v)
				}
			}
		}
		// The guard and encoding/csv must agree on where records are, or a row error would
		// name the wrong row.
		if rd.guard.records != rd.records || len(rd.guard.truncated) != 0 {
			t.Fatalf("guard saw %d records (%d truncations pending), csv %d", rd.guard.records, len(rd.guard.truncated), rd.records)
		}
	})
}
