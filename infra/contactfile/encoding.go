package contactfile

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encoding names a text encoding of a contact file.
type Encoding string

// The encodings contact files come in. Excel saves "CSV" in the system's ANSI code page
// (Windows-1252 in western Europe and the Americas) and "Unicode Text" as UTF-16LE.
const (
	EncodingUTF8        Encoding = "UTF-8"
	EncodingUTF16LE     Encoding = "UTF-16LE"
	EncodingUTF16BE     Encoding = "UTF-16BE"
	EncodingLatin1      Encoding = "ISO-8859-1"
	EncodingWindows1252 Encoding = "Windows-1252"
)

// textEncoding is a chosen encoding and how to decode it.
type textEncoding struct {
	name Encoding
	// make returns a fresh transformer to UTF-8.
	make func() transform.Transformer
}

func (e textEncoding) decoder(r io.Reader) io.Reader {
	return transform.NewReader(r, e.make())
}

func fromX(name Encoding, enc encoding.Encoding) textEncoding {
	return textEncoding{name: name, make: func() transform.Transformer { return enc.NewDecoder() }}
}

var (
	// utf8BOM decodes UTF-8, drops a byte order mark and replaces invalid bytes with U+FFFD.
	utf8BOM   = fromX(EncodingUTF8, unicode.UTF8BOM)
	utf16LE   = fromX(EncodingUTF16LE, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM))
	utf16BE   = fromX(EncodingUTF16BE, unicode.UTF16(unicode.BigEndian, unicode.UseBOM))
	latin1    = fromX(EncodingLatin1, charmap.ISO8859_1)
	win1252   = fromX(EncodingWindows1252, charmap.Windows1252)
	utf8Until = textEncoding{name: EncodingUTF8, make: func() transform.Transformer { return &utf8OrLegacy{} }}
)

// pickEncoding returns the forced encoding or detects one from the first bytes of the file.
func pickEncoding(sample []byte, forced Encoding) (textEncoding, error) {
	switch Encoding(strings.ToUpper(string(forced))) {
	case "":
		return detectEncoding(sample), nil
	case "UTF-8", "UTF8":
		return utf8BOM, nil
	case "UTF-16LE", "UTF16LE":
		return utf16LE, nil
	case "UTF-16BE", "UTF16BE":
		return utf16BE, nil
	case "ISO-8859-1", "LATIN-1", "LATIN1":
		return latin1, nil
	case "WINDOWS-1252", "CP1252":
		return win1252, nil
	}
	return textEncoding{}, fmt.Errorf("contact file encoding %q: not one of UTF-8, UTF-16LE, UTF-16BE, ISO-8859-1, Windows-1252", forced)
}

// detectEncoding reads a byte order mark, then looks for the NUL bytes of mostly-ASCII
// UTF-16, then checks whether the sample is UTF-8.
func detectEncoding(sample []byte) textEncoding {
	switch {
	case bytes.HasPrefix(sample, []byte{0xEF, 0xBB, 0xBF}):
		return utf8BOM
	case bytes.HasPrefix(sample, []byte{0xFF, 0xFE}):
		return utf16LE
	case bytes.HasPrefix(sample, []byte{0xFE, 0xFF}):
		return utf16BE
	}
	if enc, ok := sniffUTF16(sample); ok {
		return enc
	}
	multi, invalid := utf8Stats(trimPartialRune(sample))
	switch {
	case invalid == 0:
		// Also when the sample is plain ASCII: a Latin-1 letter may come later in the file,
		// and utf8OrLegacy switches to Windows-1252 at the first byte that is not UTF-8.
		return utf8Until
	case multi > invalid:
		// UTF-8 with a few broken bytes (a bad copy and paste): legacy text hardly ever
		// forms valid multi-byte sequences, so this is UTF-8 and the bytes become U+FFFD.
		return utf8BOM
	}
	// Not UTF-8, so a legacy 8-bit code page; Windows-1252 is what spreadsheets write, and
	// differs from ISO-8859-1 only in 0x80-0x9F, which are unprintable controls in Latin-1.
	return win1252
}

// utf8Stats counts the valid multi-byte sequences and the invalid bytes in b.
func utf8Stats(b []byte) (multi, invalid int) {
	for len(b) > 0 {
		if b[0] < utf8.RuneSelf {
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			invalid++
		} else {
			multi++
		}
		b = b[size:]
	}
	return multi, invalid
}

// sniffUTF16 recognises UTF-16 without a byte order mark: text that is mostly ASCII
// (delimiters, digits, most names) has a NUL in every other byte.
func sniffUTF16(sample []byte) (textEncoding, bool) {
	pairs := len(sample) / 2
	if pairs < 2 {
		return textEncoding{}, false
	}
	var even, odd int
	for i := 0; i+1 < len(sample); i += 2 {
		if sample[i] == 0 {
			even++
		}
		if sample[i+1] == 0 {
			odd++
		}
	}
	switch {
	case odd*10 >= pairs*3 && even*20 <= pairs:
		return utf16LE, true
	case even*10 >= pairs*3 && odd*20 <= pairs:
		return utf16BE, true
	}
	return textEncoding{}, false
}

// trimPartialRune cuts a UTF-8 sequence the sample boundary split.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// sampleText decodes the look-ahead for sniffing, with line breaks normalised like the
// stream's, cut after its last complete line unless it is the whole file.
func sampleText(enc textEncoding, sample []byte, atEOF bool) string {
	out, _, _ := transform.Bytes(enc.make(), sample)
	text := normalizeText(string(out))
	if !atEOF {
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			text = text[:i+1]
		}
	}
	return text
}

// normalizeText applies the guard's normalisation to a string: CRLF and CR become LF and NUL
// bytes go.
func normalizeText(s string) string {
	if !strings.ContainsAny(s, "\r\x00") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\x00", "")
}

// utf8OrLegacy decodes UTF-8 until it meets a byte that cannot be UTF-8 before any that is
// multi-byte UTF-8; from there on it decodes Windows-1252, byte by byte, except where the bytes
// form valid multi-byte UTF-8. A file whose first 64 KiB are
// ASCII is thus still read right when "José" appears on row 5,000 in Latin-1. Once real
// multi-byte UTF-8 was seen, invalid bytes become U+FFFD, as in any UTF-8 decoder.
type utf8OrLegacy struct {
	sawUTF8 bool
	legacy  bool
}

func (t *utf8OrLegacy) Reset() { *t = utf8OrLegacy{} }

func (t *utf8OrLegacy) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		if c < utf8.RuneSelf {
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = c
			nDst++
			nSrc++
			continue
		}
		if t.legacy {
			// Still UTF-8 where the bytes are: a UTF-8 file with one stray Latin-1 byte (a
			// pasted "Caf\xe9") keeps its later "José" right, while real Windows-1252 text
			// almost never forms a valid multi-byte sequence.
			if c >= 0xC2 {
				if !utf8.FullRune(src[nSrc:]) && !atEOF {
					return nDst, nSrc, transform.ErrShortSrc
				}
				if r, size := utf8.DecodeRune(src[nSrc:]); r != utf8.RuneError || size > 1 {
					if nDst+size > len(dst) {
						return nDst, nSrc, transform.ErrShortDst
					}
					nDst += copy(dst[nDst:], src[nSrc:nSrc+size])
					nSrc += size
					continue
				}
			}
			r := charmap.Windows1252.DecodeByte(c)
			if nDst+utf8.RuneLen(r) > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += utf8.EncodeRune(dst[nDst:], r)
			nSrc++
			continue
		}
		if !utf8.FullRune(src[nSrc:]) && !atEOF {
			return nDst, nSrc, transform.ErrShortSrc
		}
		r, size := utf8.DecodeRune(src[nSrc:])
		if r == utf8.RuneError && size <= 1 {
			if !t.sawUTF8 {
				t.legacy = true
				continue
			}
			if nDst+3 > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += utf8.EncodeRune(dst[nDst:], utf8.RuneError)
			nSrc++
			continue
		}
		if nDst+size > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		t.sawUTF8 = true
		nDst += copy(dst[nDst:], src[nSrc:nSrc+size])
		nSrc += size
	}
	return nDst, nSrc, nil
}
