package contactfile

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FileError says why a file cannot be read as a contact list at all, in words for the person
// who uploaded it. Code is a stable identifier (NOT_A_CSV_FILE).
type FileError struct {
	Code string
	Msg  string
}

func (e *FileError) Error() string { return e.Msg }

// signatures are the first bytes of files people upload by mistake instead of a CSV export.
var signatures = []struct {
	prefix string
	what   string
}{
	{"PK\x03\x04", "a ZIP archive, which is what Excel (.xlsx), Numbers and OpenDocument spreadsheets are"},
	{"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "an Excel 97-2003 workbook (.xls)"},
	{"%PDF", "a PDF document"},
	{"\x89PNG", "a PNG image"},
	{"\xFF\xD8\xFF", "a JPEG image"},
	{"GIF8", "a GIF image"},
	{"\x1F\x8B", "a gzip archive"},
	{"{\\rtf", "an RTF document"},
}

// A sample of at least minJudged characters of which more than maxControlShare are control
// characters or undecodable bytes is not text (a shorter one is too small to tell).
const (
	maxControlShare = 0.05
	minJudged       = 100
)

// checkText refuses a sample that is a known non-text format or does not read as text in the
// detected encoding. text is the sample decoded and normalised.
func checkText(sample []byte, text string) error {
	for _, s := range signatures {
		if bytes.HasPrefix(sample, []byte(s.prefix)) {
			return &FileError{Code: "NOT_A_CSV_FILE", Msg: "The file is " + s.what + ", not a CSV file: save or export the contacts as CSV and upload that."}
		}
	}
	trimmed := strings.TrimLeft(text, "\ufeff \t\r\n")
	if len(trimmed) >= 11 && strings.EqualFold(trimmed[:11], "BEGIN:VCARD") {
		return &FileError{Code: "NOT_A_CSV_FILE", Msg: "The file is a vCard (.vcf) file, not a CSV file: export the contacts as CSV (Google Contacts and Outlook both can) and upload that."}
	}
	var chars, control int
	for _, r := range text {
		chars++
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r') {
			control++
		}
	}
	if chars >= minJudged && float64(control)/float64(chars) > maxControlShare {
		return &FileError{Code: "NOT_A_CSV_FILE", Msg: "The file does not read as text: upload the contacts as a CSV file."}
	}
	return nil
}
