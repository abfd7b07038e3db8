package contact

import (
	"strings"
	"time"

	"github.com/google/uuid"
)

// Events of contact imports. An import's stream holds its start, one progress event per chunk
// (appended in the same transaction as the chunk's contacts, so a resumed import knows exactly
// which rows are done) and its end.
const (
	EventImportStarted    = "contact_import.started"
	EventImportProgressed = "contact_import.progressed"
	EventImportCompleted  = "contact_import.completed"
	EventImportFailed     = "contact_import.failed"

	StatusRunning   = "RUNNING"
	StatusCompleted = "COMPLETED"
	StatusFailed    = "FAILED"
)

// ImportStream is the stream id of an import.
func ImportStream(id uuid.UUID) string { return importStreamPrefix + id.String() }

const importStreamPrefix = "contactimport-"

// ImportOfStream is the import whose stream is stream; false for any other stream.
func ImportOfStream(stream string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(stream, importStreamPrefix)
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}

// ImportStarted records an uploaded file waiting to be imported.
type ImportStarted struct {
	ImportID    uuid.UUID `json:"importId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	// FileName is kept in clear (imports are listed by it), but a file name can name a person:
	// the event feed shows it only to callers that may read contacts (personal:"true").
	FileName       string      `json:"fileName" personal:"true"`
	Size           int64       `json:"size"`
	SHA256         string      `json:"sha256"`
	DefaultCountry string      `json:"defaultCountry,omitempty"`
	GroupIDs       []uuid.UUID `json:"groupIds,omitempty"`
	Source         string      `json:"source"`
}

func (ImportStarted) EventType() string { return EventImportStarted }

// ImportCounts are an import's running totals.
type ImportCounts struct {
	Rows       int `json:"rows"`
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Duplicates int `json:"duplicates"`
	Invalid    int `json:"invalid"`
}

// Add returns the sum of two counts.
func (c ImportCounts) Add(o ImportCounts) ImportCounts {
	return ImportCounts{Rows: c.Rows + o.Rows, Created: c.Created + o.Created, Updated: c.Updated + o.Updated,
		Duplicates: c.Duplicates + o.Duplicates, Invalid: c.Invalid + o.Invalid}
}

// RowError is why one row of a file could not be used. Messages never repeat the row's values:
// they are stored in the log, where personal data may only stand sealed.
type RowError struct {
	Row     int    `json:"row"`
	Message string `json:"message"`
}

// ImportProgressed records one processed chunk: the rows done so far (a line count of the file,
// header included), the chunk's counts and its row errors.
type ImportProgressed struct {
	ImportID    uuid.UUID `json:"importId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	RowsDone    int       `json:"rowsDone"`
	// BytesRead is how much of the file was read by the end of the chunk, for showing progress.
	BytesRead int64        `json:"bytesRead,omitempty"`
	Chunk     ImportCounts `json:"chunk"`
	// Errors describe rows, whose values they may quote: personal data (see FileName).
	Errors []RowError `json:"errors,omitempty" personal:"true"`
}

func (ImportProgressed) EventType() string { return EventImportProgressed }

// ImportCompleted records the end of an import and its totals.
type ImportCompleted struct {
	ImportID    uuid.UUID    `json:"importId"`
	WorkspaceID uuid.UUID    `json:"workspaceId"`
	Totals      ImportCounts `json:"totals"`
	CompletedAt time.Time    `json:"completedAt"`
}

func (ImportCompleted) EventType() string { return EventImportCompleted }

// ImportFailed records an import that could not go on (unreadable file, file lost).
type ImportFailed struct {
	ImportID    uuid.UUID `json:"importId"`
	WorkspaceID uuid.UUID `json:"workspaceId"`
	Reason      string    `json:"reason"`
}

func (ImportFailed) EventType() string { return EventImportFailed }

// Import is the state of an import stream.
type Import struct {
	Started  ImportStarted
	Status   string
	RowsDone int
	Totals   ImportCounts
	Version  int64
}

// Evolve folds one event into the state.
func (i *Import) Evolve(ev any) {
	i.Version++
	switch e := ev.(type) {
	case ImportStarted:
		i.Started, i.Status = e, StatusRunning
	case ImportProgressed:
		i.RowsDone = e.RowsDone
		i.Totals = i.Totals.Add(e.Chunk)
	case ImportCompleted:
		i.Status = StatusCompleted
	case ImportFailed:
		i.Status = StatusFailed
	}
}

// ImportEvents lists the import events, for the registry.
func ImportEvents() []interface{ EventType() string } {
	return []interface{ EventType() string }{ImportStarted{}, ImportProgressed{}, ImportCompleted{}, ImportFailed{}}
}
