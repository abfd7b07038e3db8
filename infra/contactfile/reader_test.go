package contactfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/mydigibiz/digibiz/domain/contact"
)

// result is everything a Reader produced for a file.
type result struct {
	header Header
	rows   []Row
	errs   []RowError
}

func readAll(t testing.TB, r io.Reader, opts Opts) result {
	t.Helper()
	rd, err := NewReader(r, opts)
	require.NoError(t, err)
	res := result{header: rd.Header()}
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return res
		}
		var rowErr *RowError
		if errors.As(err, &rowErr) {
			res.errs = append(res.errs, *rowErr)
			continue
		}
		require.NoError(t, err)
		res.rows = append(res.rows, row)
	}
}

func readFile(t *testing.T, name string, opts Opts) result {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return readAll(t, f, opts)
}

// titles lists the columns of a header as "Title=field".
func titles(h Header) []string {
	var out []string
	for _, c := range h.Columns {
		out = append(out, fmt.Sprintf("%s=%s", c.Title, c.Field))
	}
	return out
}

func TestReaderFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		opts      Opts
		encoding  Encoding
		delimiter rune
		noHeader  bool
		rows      []Row
		errs      []RowError
	}{
		{
			file: "google_contacts.csv", encoding: EncodingUTF8, delimiter: ',',
			rows: []Row{
				{Line: 2, Name: "Amara Okafor", Email: "amara.okafor@example.com", Phones: []string{"+234 802 123 4567"},
					Groups: []string{"Customers", "VIP"}},
				{Line: 3, Name: "Lukas Becker", Email: "lukas.becker@example.de",
					Phones: []string{"+49 151 23456789", "+49 30 1234567"}, Groups: []string{"Suppliers"},
					Custom: map[string]string{
						"Notes":                  "Met at the trade fair.\nPrefers WhatsApp, not calls.",
						"Organization 1 - Name":  "Becker Metallbau GmbH",
						"Organization 1 - Title": "Einkauf",
					}},
				// No "Name": given and family name; two values in one cell each.
				{Line: 5, Name: "Priya Sharma", Email: "priya.sharma@example.in",
					Phones: []string{"+91 81234 56789", "+91 98765 43210"}, Groups: []string{"Customers"},
					Custom: map[string]string{"E-mail 1 - Value": "p.sharma@example.org"}},
				{Line: 6, Name: "Sofía Hernández", Phones: []string{"+52 222 123 4567"}, Groups: []string{"Customers"},
					Custom: map[string]string{
						"Birthday":               "1990-05-17",
						"Organization 1 - Name":  "Panadería Sol",
						"Organization 1 - Title": "Owner",
					}},
				{Line: 7, Name: "Thandi Nkosi", Email: "thandi.nkosi@example.co.za"},
				{Line: 8, Name: "Wayan Sudarsana", Phones: []string{"+62 811 2345 678"},
					Groups: []string{"Resellers", "Customers"}},
			},
		},
		{
			file: "outlook.csv", encoding: EncodingUTF8, delimiter: ',',
			rows: []Row{
				// Outlook's placeholders (0/0/00, Unspecified, Normal, False) are no custom fields.
				{Line: 2, Name: "Daniel James O'Connor", Email: "daniel.oconnor@example.co.uk",
					Phones: []string{"+44 7400 123456", "+44 20 7946 0958"}, Groups: []string{"Customers", "VIP"},
					Custom: map[string]string{
						"Title":         "Mr.",
						"Company":       "Harbour Logistics Ltd",
						"Job Title":     "Operations Manager",
						"Business City": "London",
						"Initials":      "D.J.O.",
						"Notes":         `Prefers calls after 3pm, ask for "Dan".`,
					}},
				{Line: 3, Name: "Mei Tan", Email: "mei.tan@example.com", Phones: []string{"07400 654321"},
					Groups: []string{"Suppliers"},
					Custom: map[string]string{"Company": "Tan Trading", "Birthday": "3/14/1988"}},
				{Line: 4, Name: "Ruth Mokoena", Email: "ruth.mokoena@example.co.za",
					Phones: []string{"+27 82 555 0199", "+27 11 555 0123"}, Groups: []string{"Customers", "Johannesburg"},
					Custom: map[string]string{"E-mail 2 Address": "ruth@example.org", "Gender": "Female"}},
			},
		},
		{
			file: "latin1_semicolon.csv", encoding: EncodingWindows1252, delimiter: ';',
			rows: []Row{
				{Line: 2, Name: "José Müller", Email: "jose.mueller@example.de", Phones: []string{"0151 23456789"},
					Groups: []string{"Kunden", "Stammkunden"},
					Custom: map[string]string{"Stadt": "München", "Umsatz 2024": "1.250 €"}},
				{Line: 3, Name: "Zoë Françoise", Email: "zoe.francoise@example.fr", Phones: []string{"+33 6 12 34 56 78"},
					Groups: []string{"Kunden"}, Custom: map[string]string{"Stadt": "Straßburg"}},
				{Line: 4, Name: "Jürgen Groß", Phones: []string{"0170 1234567"}, Groups: []string{"Lieferanten"},
					Custom: map[string]string{"Stadt": "Köln", "Umsatz 2024": "980 €"}},
				{Line: 5, Name: "Ana Peña", Email: "ana.pena@example.es", Phones: []string{"+34 612 34 56 78"},
					Custom: map[string]string{"Stadt": "Sevilla"}},
			},
		},
		{
			file: "utf16_spreadsheet.txt", encoding: EncodingUTF16LE, delimiter: '\t',
			rows: []Row{
				{Line: 2, Name: "田中 花子", Email: "hanako.tanaka@example.jp", Phones: []string{"+81 90-1234-5678"},
					Groups: []string{"customers", "japan"}, Custom: map[string]string{"City": "Ōsaka"}},
				{Line: 3, Name: "Nguyễn Văn An", Email: "an.nguyen@example.vn", Phones: []string{"+84 91 234 56 78"},
					Groups: []string{"customers"}, Custom: map[string]string{"City": "Hà Nội"}},
				{Line: 4, Name: "Siti Rahayu", Phones: []string{"0812-3456-7890"}, Groups: []string{"resellers"},
					Custom: map[string]string{"City": "Jakarta\nSelatan"}},
				{Line: 6, Name: "محمد علي", Email: "m.ali@example.com", Phones: []string{"+234 803 555 0100"},
					Custom: map[string]string{"City": "Kano"}},
			},
		},
		{
			file: "utf8_bom.csv", encoding: EncodingUTF8, delimiter: ',',
			rows: []Row{
				{Line: 2, Name: "Ana Lima 🌸", Email: "ana.lima@example.com.br", Phones: []string{"+55 11 98765-4321"},
					Groups: []string{"Clientes"}, Custom: map[string]string{"Birthday": "1992-08-03"}},
				{Line: 3, Name: "Chidi Okeke", Email: "chidi@example.com", Phones: []string{"08031234567"},
					Groups: []string{"Customers", "Lagos"}},
				{Line: 4, Name: "Émile Zola", Phones: []string{"+33 6 12 34 56 78"}},
			},
		},
		{
			file: "no_header.csv", encoding: EncodingUTF8, delimiter: ',', noHeader: true,
			rows: []Row{
				{Line: 1, Name: "Amaka Obi", Email: "amaka.obi@example.com", Phones: []string{"+2348031234567"},
					Custom: map[string]string{"Column 4": "Lagos"}},
				{Line: 2, Name: "Tunde Bakare", Phones: []string{"0802 123 4567"}, Custom: map[string]string{"Column 4": "Ibadan"}},
				{Line: 3, Name: "Grace Eze", Email: "grace.eze@example.com", Phones: []string{"+234 803 555 0100"}},
			},
		},
		{
			file: "messy.csv", opts: Opts{MaxRowBytes: 200}, encoding: EncodingUTF8, delimiter: ',',
			rows: []Row{
				{Line: 3, Name: "Maria Silva", Email: "maria@example.com", Phones: []string{"+55 11 96123-4567"},
					Groups: []string{"vip"}, Custom: map[string]string{"Notes": "ok"}},
				{Line: 4, Name: "Smith, John", Phones: []string{"(201) 555-0123"}, Groups: []string{"customers", "vip"},
					Custom: map[string]string{"Notes": `said "call me", later`}},
				{Line: 5, Name: "Fatima Bello", Phones: []string{"0802 123 4567"}},
				{Line: 7, Name: "Kofi Mensah", Email: "kofi@example.com", Phones: []string{"+233 24 123 4567"},
					Custom: map[string]string{"Notes": "line one\nline two", "Column 6": "extra cell", "Column 7": "another"}},
				{Line: 10, Name: "Ahmed Khan", Email: "ahmed@example.com", Phones: []string{"0300 1234567"},
					Custom: map[string]string{"Notes": `5'11" tall`}},
				{Line: 12, Name: "Last Row", Email: "last@example.com", Phones: []string{"+27 82 555 0199"},
					Groups: []string{"final"}},
			},
			errs: []RowError{{Line: 11, Msg: "row is longer than 200 bytes, skipped"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			got := readFile(t, tt.file, tt.opts)
			require.Equal(t, tt.encoding, got.header.Encoding)
			require.Equal(t, string(tt.delimiter), string(got.header.Delimiter))
			require.Equal(t, !tt.noHeader, got.header.Present)
			if diff := cmp.Diff(tt.rows, got.rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, got.errs); diff != "" {
				t.Errorf("row errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderHeaderMapping(t *testing.T) {
	t.Parallel()
	got := readFile(t, "google_contacts.csv", Opts{})
	cols := titles(got.header)
	for _, want := range []string{
		"Name=name", "Given Name=first name", "Additional Name=middle name", "Family Name=last name",
		"Group Membership=groups", "E-mail 1 - Type=ignored", "E-mail 1 - Value=email", "Phone 1 - Type=ignored",
		"Phone 1 - Value=phone", "Phone 2 - Value=phone", "Notes=custom",
	} {
		require.Contains(t, cols, want)
	}
	require.True(t, got.header.Has(FieldPhone))

	got = readFile(t, "outlook.csv", Opts{})
	cols = titles(got.header)
	for _, want := range []string{
		"First Name=first name", "Middle Name=middle name", "Last Name=last name", "Mobile Phone=phone",
		"Business Phone=phone", "Business Phone 2=phone", "Home Phone=phone", "Primary Phone=phone",
		"E-mail Address=email", "E-mail 2 Address=email", "E-mail Type=ignored", "E-mail Display Name=ignored",
		"Categories=groups", "Business Fax=custom", "Pager=custom",
	} {
		require.Contains(t, cols, want)
	}

	got = readFile(t, "no_header.csv", Opts{})
	require.Equal(t, []string{"=name", "=phone", "=email", "=custom"}, titles(got.header))
}

// The aliases people use for columns, one small file each.
func TestReaderAliases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		csv  string
		want Row
	}{
		{"Contact Name,Cell,E-Mail,Labels\nAda,+1 201 555 0123,ada@example.com,a ::: b",
			Row{Name: "Ada", Phones: []string{"+1 201 555 0123"}, Email: "ada@example.com", Groups: []string{"a", "b"}}},
		{"DISPLAY NAME;Telephone;WhatsApp Number;Tags\nAda;0201 1234;0151 23456789;x",
			Row{Name: "Ada", Phones: []string{"0151 23456789", "0201 1234"}, Groups: []string{"x"}}},
		{"nombre,teléfono,correo\nAda López,555,ada@example.mx",
			Row{Name: "Ada López", Phones: []string{"555"}, Email: "ada@example.mx"}},
		{"nom,portable\nAda Lovelace,06 12 34 56 78", Row{Name: "Ada Lovelace", Phones: []string{"06 12 34 56 78"}}},
		// Beside a first-name column, French "Nom" and Spanish "Nombre" are not the full name.
		{"Prénom;Nom;Portable\nAda;Lovelace;06 12 34 56 78", Row{Name: "Ada Lovelace", Phones: []string{"06 12 34 56 78"}}},
		{"Nombre,Apellidos,Móvil\nAda,López Díaz,612 34 56 78", Row{Name: "Ada López Díaz", Phones: []string{"612 34 56 78"}}},
		{"first_name,middle_name,last_name,mobile_number,group\nAda,K.,Lovelace,1,VIP;Friends",
			Row{Name: "Ada K. Lovelace", Phones: []string{"1"}, Groups: []string{"VIP", "Friends"}}},
		// A full name wins over its parts; the parts are not custom fields.
		{"Name,First Name,Last Name,Phone\nAda L.,Ada,Lovelace,1", Row{Name: "Ada L.", Phones: []string{"1"}}},
		// Only unknown columns: still a header, everything custom.
		{"Foo,Bar\nx,y", Row{Custom: map[string]string{"Foo": "x", "Bar": "y"}}},
		// Columns of the same name are joined, not lost.
		{"Name,Note,Note\nAda,a,b", Row{Name: "Ada", Custom: map[string]string{"Note": "a; b"}}},
		// Google's old system groups are kept without their marker.
		{"Name,Group Membership\nAda,* Friends ::: * myContacts ::: * Starred ::: Starred",
			Row{Name: "Ada", Groups: []string{"Friends", "Starred"}}},
		// A row names at most MaxGroupsPerRow groups.
		{"Name,Tags\nAda," + strings.Repeat("t;", 10) + func() string {
			var b strings.Builder
			for i := range 5000 {
				fmt.Fprintf(&b, "g%d;", i)
			}
			return b.String()
		}(), Row{Name: "Ada", Groups: []string{"t", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10", "g11",
			"g12", "g13", "g14", "g15", "g16", "g17", "g18"}}},
		// Google types its numbers in a column of their own: the mobile goes first.
		{"Name,Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value\nAda,Work,+49 30 1234567,Mobile,+49 151 2222222",
			Row{Name: "Ada", Phones: []string{"+49 151 2222222", "+49 30 1234567"}}},
		// Outlook in German, French and Spanish.
		{"Vorname,Nachname,Telefon geschäftlich,Mobiltelefon,E-Mail-Adresse,Kategorien\nAda,Lovelace,030 1234567,0151 2222222,ada@example.de,Kunden",
			Row{Name: "Ada Lovelace", Phones: []string{"0151 2222222", "030 1234567"}, Email: "ada@example.de", Groups: []string{"Kunden"}}},
		{"Prénom,Nom,Téléphone mobile,Adresse de messagerie\nAda,Lovelace,06 12 34 56 78,ada@example.fr",
			Row{Name: "Ada Lovelace", Phones: []string{"06 12 34 56 78"}, Email: "ada@example.fr"}},
		{"Nombre,Apellidos,Teléfono móvil,Dirección de correo electrónico\nAda,Lovelace,612 34 56 78,ada@example.es",
			Row{Name: "Ada Lovelace", Phones: []string{"612 34 56 78"}, Email: "ada@example.es"}},
		// Several numbers in one cell are several numbers; "0151/1234567" is one.
		{"Name,Phone,Mobile\nAda,\"030 123456 / 040 654321\",\"0151 1234567, 0170 7654321\"",
			Row{Name: "Ada", Phones: []string{"0151 1234567", "0170 7654321", "030 123456", "040 654321"}}},
		{"Name,Phone\nAda,0151/1234567", Row{Name: "Ada", Phones: []string{"0151/1234567"}}},
		{"Name,Phone\nAda,\"0151 1234567, ext. 12\"", Row{Name: "Ada", Phones: []string{"0151 1234567, ext. 12"}}},
		// Older exports spell it "* My Contacts".
		{"Name,Group Membership\nAda,* My Contacts ::: Friends", Row{Name: "Ada", Groups: []string{"Friends"}}},
	}
	for _, tt := range tests {
		t.Run(strings.SplitN(tt.csv, "\n", 2)[0], func(t *testing.T) {
			t.Parallel()
			got := readAll(t, strings.NewReader(tt.csv), Opts{})
			require.True(t, got.header.Present)
			require.Empty(t, got.errs)
			require.Len(t, got.rows, 1)
			tt.want.Line = 2
			if diff := cmp.Diff(tt.want, got.rows[0]); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderDelimiterSniffing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       rune
	}{
		{"comma with semicolons in values", "Name,Phone,Tags\nAda,1,a;b\nBob,2,c;d;e\nCy,3,\n", ','},
		{"semicolon with commas in names", "Name;Phone\nLovelace, Ada;1\nBabbage, Charles;2\nCy;3\n", ';'},
		{"tab with commas and semicolons", "Name\tPhone\tNotes\nAda\t1\ta, b; c\nBob\t2\tx,y\n", '\t'},
		{"pipe", "Name|Phone\nAda|1\nBob|2\n", '|'},
		{"quoted delimiters do not count", "Name;Phone\n\"A;d;a\";1\n\"B;o;b\";2\n", ';'},
		{"one column", "Phone\n+49 151 23456789\n+49 151 23456780\n", ','},
		{"ragged rows", "Name;Phone;Email\nAda;1\nBob;2;b@example.com;x\nCy;3;c@example.com\nDi;4;d@example.com\n", ';'},
		{"excel sep line", "sep=|\nName|Phone\nAda|1\n", '|'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, strings.NewReader(tt.text), Opts{})
			require.Equal(t, string(tt.want), string(got.header.Delimiter))
			require.NotEmpty(t, got.rows)
			require.Contains(t, titles(got.header), "Phone=phone")
		})
	}
}

func TestReaderSepLineKeepsLineNumbers(t *testing.T) {
	t.Parallel()
	got := readAll(t, strings.NewReader("sep=;\r\nName;Phone\r\nAda;1\r\n"), Opts{})
	require.Equal(t, []Row{{Line: 3, Name: "Ada", Phones: []string{"1"}}}, got.rows)
}

func TestReaderForcedOptions(t *testing.T) {
	t.Parallel()
	// Without options this is one comma-separated column pair; forced, it is semicolons.
	got := readAll(t, strings.NewReader("Name;Phone,Mobile\nAda;1,2\n"), Opts{Delimiter: ';'})
	require.Equal(t, []Row{{Line: 2, Name: "Ada", Custom: map[string]string{"Phone,Mobile": "1,2"}}}, got.rows)

	// ISO-8859-1 forced on bytes that are valid UTF-8 reads them as two Latin-1 letters each.
	got = readAll(t, strings.NewReader("Name\nJos\xc3\xa9\n"), Opts{Encoding: EncodingLatin1})
	require.Equal(t, "JosÃ©", got.rows[0].Name)
	require.Equal(t, EncodingLatin1, got.header.Encoding)

	_, err := NewReader(strings.NewReader("x"), Opts{Encoding: "EBCDIC"})
	require.ErrorContains(t, err, "EBCDIC")
	_, err = NewReader(strings.NewReader("x"), Opts{Delimiter: '"'})
	require.Error(t, err)
	_, err = NewReader(strings.NewReader("x"), Opts{Delimiter: '§'})
	require.Error(t, err)
}

func TestReaderEncodings(t *testing.T) {
	t.Parallel()
	const text = "Name\tPhone\r\nZoë Françoise\t+33 6 12 34 56 78\r\nJosé\t1\r\n"
	want := []Row{
		{Line: 2, Name: "Zoë Françoise", Phones: []string{"+33 6 12 34 56 78"}},
		{Line: 3, Name: "José", Phones: []string{"1"}},
	}
	encode := func(enc interface{ Bytes([]byte) ([]byte, error) }) []byte {
		b, err := enc.Bytes([]byte(text))
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want Encoding
	}{
		{"utf-8", []byte(text), EncodingUTF8},
		{"utf-8 bom", append([]byte("\xef\xbb\xbf"), text...), EncodingUTF8},
		{"utf-16le bom", encode(unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder()), EncodingUTF16LE},
		{"utf-16be bom", encode(unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder()), EncodingUTF16BE},
		{"utf-16le no bom", encode(unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder()), EncodingUTF16LE},
		{"utf-16be no bom", encode(unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM).NewEncoder()), EncodingUTF16BE},
		{"windows-1252", encode(charmap.Windows1252.NewEncoder()), EncodingWindows1252},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, bytes.NewReader(tt.data), Opts{})
			require.Equal(t, tt.want, got.header.Encoding)
			require.Equal(t, want, got.rows)
			require.Equal(t, "Name", got.header.Columns[0].Title, "no byte order mark in the title")
		})
	}
}

// A Latin-1 letter after the 64 KiB look-ahead is still decoded as Latin-1.
func TestReaderLatin1AfterLookAhead(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	b.WriteString("Name;Phone\n")
	n := 0
	for b.Len() < 2*sniffBytes {
		fmt.Fprintf(&b, "Person %d;+49 151 %08d\n", n, n)
		n++
	}
	b.WriteString("Jos\xe9 M\xfcller;+49 151 99999999\n") // Latin-1 bytes
	got := readAll(t, &b, Opts{})
	require.Len(t, got.rows, n+1)
	last := got.rows[n]
	require.Equal(t, "José Müller", last.Name)
	require.Equal(t, n+2, last.Line)
}

// Once real UTF-8 was seen, a stray invalid byte is a replacement character, not a switch.
func TestReaderUTF8WithStrayByte(t *testing.T) {
	t.Parallel()
	got := readAll(t, strings.NewReader("Name,Phone\nJosé,1\nBad\xff,2\nZoë,3\n"), Opts{})
	require.Equal(t, []string{"José", "Bad\ufffd", "Zoë"}, names(got.rows))
}

func names(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

func TestReaderLineEndingsAndNUL(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"lf":   "Name,Phone\nAda,1\n\nBob,2\n",
		"crlf": "Name,Phone\r\nAda,1\r\n\r\nBob,2\r\n",
		"cr":   "Name,Phone\rAda,1\r\rBob,2\r", // Excel for Mac "CSV (Macintosh)"
		"nul":  "Name,Phone\nA\x00da,1\n\nBob,2\x00\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := readAll(t, strings.NewReader(text), Opts{})
			require.Equal(t, []Row{
				{Line: 2, Name: "Ada", Phones: []string{"1"}},
				{Line: 4, Name: "Bob", Phones: []string{"2"}},
			}, got.rows)
		})
	}
}

func TestReaderEmpty(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "\n\n\r\n", "\xef\xbb\xbf", "Name,Phone\n", "Name,Phone\n,\n , \n"} {
		got := readAll(t, strings.NewReader(text), Opts{})
		require.Empty(t, got.rows, "%q", text)
		require.Empty(t, got.errs, "%q", text)
	}
}

// An unterminated quote would make the rest of the file one field; the row limit turns it
// into one row error, and reading resumes on the next line with the right line numbers.
func TestReaderRowLimit(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Name,Phone,Notes\nAda,1,fine\n")
	b.WriteString(`Bob,2,"never closed` + "\n")
	for i := range 50 {
		fmt.Fprintf(&b, "Person %d,%d,\n", i, 100+i)
	}
	got := readAll(t, strings.NewReader(b.String()), Opts{MaxRowBytes: 300})
	require.Equal(t, []RowError{{Line: 3, Msg: "row is longer than 300 bytes, skipped"}}, got.errs)
	require.Equal(t, Row{Line: 2, Name: "Ada", Phones: []string{"1"}, Custom: map[string]string{"Notes": "fine"}}, got.rows[0])
	// The rows inside the runaway quote up to the limit are lost with it; the ones after
	// come back with their own line numbers.
	require.Greater(t, len(got.rows), 20)
	for _, row := range got.rows[1:] {
		var i int
		_, err := fmt.Sscanf(row.Name, "Person %d", &i)
		require.NoError(t, err)
		require.Equal(t, i+4, row.Line, row.Name)
		require.Equal(t, []string{fmt.Sprint(100 + i)}, row.Phones)
	}

	// One overlong line without quotes.
	long := "Name,Phone\nAda," + strings.Repeat("1", 500) + "\nBob,2\n"
	got = readAll(t, strings.NewReader(long), Opts{MaxRowBytes: 100})
	require.Equal(t, []RowError{{Line: 2, Msg: "row is longer than 100 bytes, skipped"}}, got.errs)
	require.Equal(t, []Row{{Line: 3, Name: "Bob", Phones: []string{"2"}}}, got.rows)

	// A quoted field that ends exactly where the limit strikes.
	edge := "Name,Phone\n\"" + strings.Repeat("x", 99) + "\",1\nBob,2\n"
	got = readAll(t, strings.NewReader(edge), Opts{MaxRowBytes: 100})
	require.Len(t, got.errs, 1)
	require.Equal(t, []Row{{Line: 3, Name: "Bob", Phones: []string{"2"}}}, got.rows)

	// A header that long leaves nothing to map columns by.
	_, err := NewReader(strings.NewReader(strings.Repeat("x", 200)+"\nAda\n"), Opts{MaxRowBytes: 100})
	require.ErrorContains(t, err, "longer than 100 bytes")
}

// countingReader produces an endless CSV and counts what was taken from it.
type countingReader struct {
	n    int
	row  int
	left []byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(c.left) == 0 {
		if c.row == 0 {
			c.left = []byte("Name,Phone\n")
		} else {
			c.left = fmt.Appendf(nil, "Person %d,+49 151 %08d\n", c.row, c.row)
		}
		c.row++
	}
	k := copy(p, c.left)
	c.left = c.left[k:]
	c.n += k
	return k, nil
}

// The reader streams: it takes a bounded look-ahead from its source, not the file.
func TestReaderStreams(t *testing.T) {
	t.Parallel()
	src := &countingReader{}
	rd, err := NewReader(src, Opts{})
	require.NoError(t, err)
	for i := 1; i <= 10_000; i++ {
		row, err := rd.Next()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("Person %d", i), row.Name)
		require.Equal(t, i+1, row.Line)
	}
	// The source is ahead of the rows read by buffers only.
	size := len("Name,Phone\n")
	for i := 1; i <= 10_000; i++ {
		size += len(fmt.Sprintf("Person %d,+49 151 %08d\n", i, i))
	}
	require.GreaterOrEqual(t, src.n, size)
	require.Less(t, src.n, size+256<<10)
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReaderSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	_, err := NewReader(failingReader{boom}, Opts{})
	require.ErrorIs(t, err, boom)

	// An error after the look-ahead ends the file with that error, for good.
	var b bytes.Buffer
	b.WriteString("Name,Phone\n")
	for b.Len() < 2*sniffBytes {
		b.WriteString("Ada,1\n")
	}
	rd, err := NewReader(io.MultiReader(&b, failingReader{boom}), Opts{})
	require.NoError(t, err)
	for {
		_, err = rd.Next()
		if err != nil {
			break
		}
	}
	require.ErrorIs(t, err, boom)
	_, err = rd.Next()
	require.ErrorIs(t, err, boom)
}

func TestReaderHeaderless(t *testing.T) {
	t.Parallel()
	got := readAll(t, strings.NewReader("+49 151 23456789\n0151 23456780\n"), Opts{})
	require.False(t, got.header.Present)
	require.Equal(t, []Row{
		{Line: 1, Phones: []string{"+49 151 23456789"}},
		{Line: 2, Phones: []string{"0151 23456780"}},
	}, got.rows)

	// Dates and postal codes are not phone numbers.
	got = readAll(t, strings.NewReader("2024-01-31;Ada;12345;(201) 555-0123\n2024-02-01;Bob;54321;201.555.0124\n"), Opts{})
	require.False(t, got.header.Present)
	require.Equal(t, []string{"=custom", "=name", "=custom", "=phone"}, titles(got.header))
	require.Equal(t, Row{Line: 1, Name: "Ada", Phones: []string{"(201) 555-0123"},
		Custom: map[string]string{"Column 1": "2024-01-31", "Column 3": "12345"}}, got.rows[0])
}

// The numbers of the format test files are valid in the country a user importing them
// would set, so that import tests can use the files end to end.
func TestFilePhonesAreValid(t *testing.T) {
	t.Parallel()
	for file, country := range map[string]string{
		"google_contacts.csv":   "",
		"outlook.csv":           "GB",
		"latin1_semicolon.csv":  "DE",
		"utf16_spreadsheet.txt": "ID",
		"utf8_bom.csv":          "NG",
		"no_header.csv":         "NG",
	} {
		for _, row := range readFile(t, file, Opts{}).rows {
			for _, p := range row.Phones {
				_, err := contact.NormalizePhone(p, country)
				require.NoError(t, err, "%s line %d: %q", file, row.Line, p)
			}
		}
	}
}

// Input arriving a byte at a time splits runes, CRLF pairs and quotes across reads.
func TestReaderOneByteReads(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"google_contacts.csv", "outlook.csv", "latin1_semicolon.csv", "utf16_spreadsheet.txt", "messy.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		opts := Opts{}
		if name == "messy.csv" {
			opts.MaxRowBytes = 200
		}
		want := readAll(t, bytes.NewReader(data), opts)
		got := readAll(t, iotest.OneByteReader(bytes.NewReader(data)), opts)
		require.Equal(t, want, got, name)
		require.NotEmpty(t, got.rows)
	}
}

func TestReaderUTF8OrLegacy(t *testing.T) {
	t.Parallel()
	decode := func(s string) string {
		b, err := io.ReadAll(transform.NewReader(iotest.OneByteReader(strings.NewReader(s)), &utf8OrLegacy{}))
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "plain ascii", decode("plain ascii"))
	require.Equal(t, "Zoë and José", decode("Zo\xc3\xab and Jos\xc3\xa9"))
	// Latin-1 (Windows-1252) after ASCII: the rest of the input is legacy.
	require.Equal(t, "José costs 5 € – Zoë", decode("Jos\xe9 costs 5 \x80 \x96 Zo\xeb"))
	// A stray Latin-1 byte in a UTF-8 file: later UTF-8 still reads as UTF-8.
	require.Equal(t, "Café then José and Zoë", decode("Caf\xe9 then Jos\xc3\xa9 and Zo\xc3\xab"))
	// After real UTF-8, a bad byte is a replacement character.
	require.Equal(t, "Zoë \ufffd José", decode("Zo\xc3\xab \xff Jos\xc3\xa9"))
	// A truncated sequence at the very end.
	require.Equal(t, "Zoë \ufffd", decode("Zo\xc3\xab \xc3"))
}

// Files that are not CSV at all are refused up front, with a message that says what they are.
func TestNotACSVFile(t *testing.T) {
	random := make([]byte, 4096)
	rng := mathrand.New(mathrand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	for name, c := range map[string]struct {
		data []byte
		says string
	}{
		"xlsx":   {append([]byte("PK\x03\x04\x14\x00\x06\x00"), random[:500]...), "Excel (.xlsx)"},
		"xls":    {append([]byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"), random[:500]...), "Excel 97-2003"},
		"pdf":    {[]byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"), "PDF"},
		"vcard":  {[]byte("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada Lovelace\r\nTEL:+441234567890\r\nEND:VCARD\r\n"), "vCard"},
		"binary": {random, "does not read as text"},
	} {
		_, err := NewReader(bytes.NewReader(c.data), Opts{})
		var fe *FileError
		require.ErrorAs(t, err, &fe, name)
		require.Equal(t, "NOT_A_CSV_FILE", fe.Code, name)
		require.Contains(t, fe.Msg, c.says, name)
	}
}

// BytesRead grows as rows are read and ends at the file's size.
func TestBytesRead(t *testing.T) {
	var b strings.Builder
	b.WriteString("Name,Phone\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "Person %d,+4917%09d\n", i, i)
	}
	data := b.String()
	rd, err := NewReader(strings.NewReader(data), Opts{})
	require.NoError(t, err)
	var seen []int64
	for i := 0; ; i++ {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if i%5000 == 0 {
			seen = append(seen, rd.BytesRead())
		}
	}
	require.Equal(t, int64(len(data)), rd.BytesRead())
	for i := 1; i < len(seen); i++ {
		require.Less(t, seen[i-1], seen[i])
	}
	require.Less(t, seen[len(seen)-1], int64(len(data)))
}
