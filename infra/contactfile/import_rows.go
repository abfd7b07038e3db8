package contactfile

import (
	"errors"
	"io"
	"strings"

	"github.com/mydigibiz/digibiz/domain/contact"
	"github.com/mydigibiz/digibiz/domain/fault"
)

// ImportRows reads a contact file as the import's rows (commands.RowReader): the rows as
// contact.ImportRow, a row the file cannot give as a RowProblem with its line.
func ImportRows(r io.Reader) (*Rows, error) {
	rd, err := NewReader(r, Opts{})
	if err != nil {
		return nil, err
	}
	return &Rows{rd}, nil
}

// Rows are a file's rows for an import.
type Rows struct{ r *Reader }

// BytesRead is how much of the file was read (the import's progress).
func (a *Rows) BytesRead() int64 { return a.r.BytesRead() }

// Next is the next row; io.EOF at the end.
func (a *Rows) Next() (contact.ImportRow, error) {
	row, err := a.r.Next()
	var re *RowError
	if errors.As(err, &re) {
		return contact.ImportRow{}, rowProblem{re}
	}
	if err != nil {
		return contact.ImportRow{}, err
	}
	return contact.ImportRow{Line: row.Line, Name: row.Name, Email: row.Email, Phones: row.Phones, Groups: row.Groups, Custom: row.Custom}, nil
}

// rowProblem is a row the file could not give (commands.RowProblem).
type rowProblem struct{ e *RowError }

func (p rowProblem) Error() string { return p.e.Msg }
func (p rowProblem) RowLine() int  { return p.e.Line }

// CheckUpload refuses, before an upload is stored, a file that is no contact list: not text (a
// spreadsheet, a PDF, an image), or text without a column of phone numbers. It reads the start
// of the file only. Its errors are the userErrors of the upload's "file" field.
func CheckUpload(file io.Reader) error {
	rd, err := NewReader(file, Opts{})
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		return fault.InvalidField("file", fe.Code, "%s", fe.Msg)
	case err != nil:
		return fault.InvalidField("file", "NOT_A_CSV_FILE", "The file is not a readable contact list: %s", err.Error())
	}
	h := rd.Header()
	if !h.Has(FieldPhone) {
		var titles []string
		for _, c := range h.Columns {
			if c.Title != "" {
				titles = append(titles, c.Title)
			}
		}
		msg := "No column of the file holds phone numbers"
		if len(titles) > 0 {
			msg += " (its columns: " + strings.Join(titles, ", ") + ")"
		}
		return fault.InvalidField("file", "NO_PHONE_COLUMN", "%s; a column titled Phone, Mobile or WhatsApp is recognised.", msg)
	}
	return nil
}
