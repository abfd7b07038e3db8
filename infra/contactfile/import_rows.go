package contactfile

import (
	"errors"
	"io"

	"github.com/mydigibiz/digibiz/domain/contact"
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
