package contactfile

import (
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Header is how the reader understood a file.
type Header struct {
	Encoding Encoding
	// Delimiter separates fields: ',', ';', '\t', '|' or the one forced.
	Delimiter rune
	// Present is false for a file without a header row, whose columns were assigned by their
	// content.
	Present bool
	Columns []Column
}

// Has reports whether some column feeds f, e.g. to refuse a file without phone numbers.
func (h Header) Has(f Field) bool {
	for _, c := range h.Columns {
		if c.Field == f {
			return true
		}
	}
	return false
}

// Column is one column of the file and what it feeds.
type Column struct {
	// Index is the 0-based position.
	Index int
	// Title is the header text as written (trimmed); empty without a header row.
	Title string
	Field Field
}

// key is the custom-field key of the column: its title, or "Column N" without one.
func (c Column) key() string {
	if c.Title != "" {
		return c.Title
	}
	return "Column " + strconv.Itoa(c.Index+1)
}

// Field is what a column means.
type Field uint8

const (
	// FieldCustom keeps the values as custom fields under the column's title.
	FieldCustom Field = iota
	// FieldIgnored drops the column: it describes another column (Google's "Phone 1 -
	// Type") rather than the contact.
	FieldIgnored
	FieldName
	FieldFirstName
	FieldMiddleName
	FieldLastName
	FieldPhone
	FieldEmail
	FieldGroups
)

var fieldNames = [...]string{"custom", "ignored", "name", "first name", "middle name", "last name", "phone", "email", "groups"}

func (f Field) String() string {
	if int(f) < len(fieldNames) {
		return fieldNames[f]
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// aliases maps compacted header texts (see compactKey) to fields: the usual English names,
// the columns of Google Contacts and Outlook exports, and common names in the languages of
// our markets.
var aliases = map[string]Field{}

func init() {
	add := func(f Field, keys ...string) {
		for _, k := range keys {
			aliases[k] = f
		}
	}
	add(FieldName, "name", "names", "fullname", "displayname", "contactname", "contact", "nombre", "nom",
		"nome", "nombrecompleto", "nomcomplet", "nomecompleto", "namalengkap", "nama", "customername",
		"clientname")
	add(FieldFirstName, "firstname", "givenname", "first", "forename", "vorname", "prenom", "nombredepila",
		"primeironome", "namadepan")
	add(FieldMiddleName, "middlename", "additionalname", "middle", "middleinitial")
	add(FieldLastName, "lastname", "familyname", "surname", "last", "nachname", "apellido", "apellidos",
		"nomdefamille", "sobrenome", "apelido", "namabelakang")
	add(FieldPhone, "phone", "phones", "phonenumber", "phonenumbers", "phoneno", "telephone",
		"telephonenumber", "tel", "telno", "mobile", "mobilephone", "mobilenumber", "mobileno", "cell",
		"cellphone", "cellnumber", "cellular", "whatsapp", "whatsappnumber", "whatsappphone", "whatsappno",
		"whatsappnummer", "wa", "msisdn", "number", "contactnumber",
		// Outlook.
		"primaryphone", "homephone", "businessphone", "workphone", "otherphone", "carphone",
		"companymainphone", "assistantsphone", "callback", "radiophone",
		// Other languages.
		"telefono", "telefone", "telefon", "telefonnummer", "handy", "handynummer", "mobil", "mobilnummer",
		"celular", "movil", "portable", "numero", "numerodetelephone", "numerodetelefono", "hp", "nohp",
		"nomorhp", "nomortelepon", "nomorwhatsapp", "nomorwa",
		// English variants.
		"mobilephonenumber", "cellphonenumber", "contactno", "mobilenumbers",
		// Outlook in German, French and Spanish.
		"mobiltelefon", "telefongeschaftlich", "telefonprivat", "telefongeschaftlich2", "telefonprivat2",
		"weiteretelefon", "telefonfirma", "autotelefon", "telephonemobile", "telephonebureau",
		"telephonedomicile", "telephonebureau2", "telephonedomicile2", "autretelephone",
		"telefonomovil", "telefonodeltrabajo", "telefonoparticular", "telefonodeltrabajo2",
		"telefonoparticular2", "otrotelefono", "telefonoprincipal")
	add(FieldEmail, "emailadresse", "adressedemessagerie", "direcciondecorreoelectronico", "primaryemail",
		"secondaryemail", "emailadress")
	add(FieldEmail, "email", "emails", "emailaddress", "mail", "emailaddr", "correo", "correoelectronico",
		"courriel", "adresseemail", "epost")
	add(FieldGroups, "groups", "group", "tags", "tag", "labels", "label", "groupmembership", "categories",
		"category", "contactgroups", "contactgroup", "lists", "list", "segment", "segments", "grupos", "grupo",
		"etiquetas", "gruppen", "gruppe", "kategorien", "kategorie", "categorias", "categoria")
	// Outlook describes its e-mail column in two more.
	add(FieldIgnored, "emailtype", "emaildisplayname")
}

// classify returns the field of a header text.
func classify(title string) Field {
	k := compactKey(title)
	if f, ok := aliases[k]; ok {
		return f
	}
	// Numbered columns: Google's "Phone 1 - Value" / "E-mail 2 - Type", Outlook's
	// "Home Phone 2" / "E-mail 2 Address" / "E-mail 3 Display Name".
	base, num, suffix := numberedKey(k)
	if num == "" {
		return FieldCustom
	}
	f := aliases[base]
	if f != FieldPhone && f != FieldEmail {
		return FieldCustom
	}
	switch suffix {
	case "", "value", "address", "adresse", "direccion":
		return f
	case "type", "label", "displayname":
		return FieldIgnored
	}
	return FieldCustom
}

// numberedKey splits the compact key of a numbered column ("phone1value") into its base
// ("phone"), number ("1") and suffix ("value"); num is "" when the key has no number after a
// base.
func numberedKey(k string) (base, num, suffix string) {
	i := strings.IndexFunc(k, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return "", "", ""
	}
	j := i
	for j < len(k) && k[j] >= '0' && k[j] <= '9' {
		j++
	}
	return k[:i], k[i:j], k[j:]
}

// compactKey folds a header text for matching: lower case, accents removed, only letters
// and digits kept, so "E-mail Address", "e_mail address" and "EMAIL ADDRESS" agree.
func compactKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.TrimSpace(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isHeader reports whether the first record is a header: some cell names a known column,
// or no cell looks like a phone number (a header with only unknown columns).
func isHeader(rec []string) bool {
	phoneLike := false
	for _, cell := range rec {
		if cell = trimHeaderCell(cell); cell == "" {
			continue
		}
		if classify(cell) != FieldCustom {
			return true
		}
		if looksLikePhone(cell) {
			phoneLike = true
		}
	}
	return !phoneLike
}

// trimHeaderCell trims a header cell, also of a stray byte order mark.
func trimHeaderCell(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(s, "\ufeff"))
}

// headerColumns maps a header row.
func headerColumns(rec []string) []Column {
	cols := make([]Column, len(rec))
	var hasFirst, hasLast bool
	for i, cell := range rec {
		title := trimHeaderCell(cell)
		f := FieldCustom
		if title != "" {
			f = classify(title)
		}
		cols[i] = Column{Index: i, Title: title, Field: f}
		hasFirst = hasFirst || f == FieldFirstName
		hasLast = hasLast || f == FieldLastName
	}
	// In French "Nom" beside "Prénom" is the family name, and in Spanish "Nombre" beside
	// "Apellido" the given name; alone, each is the full name.
	for i, c := range cols {
		switch k := compactKey(c.Title); {
		case k == "nom" && hasFirst:
			cols[i].Field = FieldLastName
		case k == "nombre" && hasLast:
			cols[i].Field = FieldFirstName
		}
	}
	return cols
}

// inferColumns assigns the columns of a header-less file by their content in the sample:
// phone-like columns are phones, e-mail-like ones e-mail, the first other column with words
// the name, the rest custom fields.
func inferColumns(records [][]string) []Column {
	n := 0
	for _, rec := range records {
		n = max(n, len(rec))
	}
	type stats struct{ filled, phones, emails, words int }
	st := make([]stats, n)
	for _, rec := range records {
		for i, cell := range rec {
			v := strings.TrimSpace(cell)
			if v == "" {
				continue
			}
			st[i].filled++
			switch {
			case looksLikePhone(v):
				st[i].phones++
			case looksLikeEmail(v):
				st[i].emails++
			case strings.IndexFunc(v, unicode.IsLetter) >= 0:
				st[i].words++
			}
		}
	}
	cols := make([]Column, n)
	haveName, haveEmail := false, false
	for i, s := range st {
		f := FieldCustom
		switch {
		case s.filled == 0:
		case s.phones*2 > s.filled:
			f = FieldPhone
		case s.emails*2 > s.filled && !haveEmail:
			f, haveEmail = FieldEmail, true
		case s.words*2 > s.filled && !haveName:
			f, haveName = FieldName, true
		}
		cols[i] = Column{Index: i, Field: f}
	}
	return cols
}

// looksLikePhone tells a phone number from other data without knowing its country: digits
// with the usual punctuation, 7 to 17 of them (with "00" and a country code), not a date.
func looksLikePhone(s string) bool {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	for _, p := range []string{"tel:", "whatsapp:"} {
		if strings.HasPrefix(lower, p) {
			s = strings.TrimSpace(s[len(p):])
			break
		}
	}
	digits, seps := 0, 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == '-' || r == '.' || r == '/':
			seps++
		case r == ' ' || r == '(' || r == ')':
		default:
			return false
		}
	}
	if digits < 7 || digits > 17 {
		return false
	}
	return !(seps == 2 && looksLikeDate(s))
}

// looksLikeDate recognises 2024-01-31, 31.01.2024 and 1/31/24.
func looksLikeDate(s string) bool {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '.' || r == '/' })
	if len(parts) != 3 {
		return false
	}
	l0, l1, l2 := len(parts[0]), len(parts[1]), len(parts[2])
	return (l0 == 4 && l1 <= 2 && l2 <= 2) || (l0 <= 2 && l1 <= 2 && (l2 == 2 || l2 == 4))
}

func looksLikeEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && strings.IndexByte(s[at:], '.') > 1 && !strings.ContainsAny(s, " \t")
}

// isPlaceholder recognises the values Outlook writes into every exported contact, which
// would otherwise become custom fields of everyone.
// key is the column title folded by compactKey.
func isPlaceholder(key, v string) bool {
	switch key {
	case "priority", "sensitivity":
		return strings.EqualFold(v, "normal")
	case "private":
		return strings.EqualFold(v, "false")
	case "gender":
		return strings.EqualFold(v, "unspecified")
	case "birthday", "anniversary":
		return v == "0/0/00" || v == "00.00.00"
	}
	return false
}
