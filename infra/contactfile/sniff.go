package contactfile

import (
	"encoding/csv"
	"strings"
)

// delimiters are the separators sniffed, in order of preference on a tie.
var delimiters = []byte{',', ';', '\t', '|'}

// sniffDelimiter picks the delimiter that splits the sample's records most consistently:
// for each candidate, the share of records having the most common field count (at least
// two); on a tie the larger count wins, since a delimiter that also occurs inside values
// yields fewer fields per record than the real one. A file without any, one column of phone
// numbers, reads as comma-separated.
func sniffDelimiter(text string) byte {
	best, bestShare, bestCount := byte(','), 0.0, 0
	for _, d := range delimiters {
		if strings.IndexByte(text, d) < 0 {
			continue
		}
		count, share := fieldCountMode(text, d)
		if count < 2 {
			continue
		}
		if share > bestShare+1e-9 || (share > bestShare-1e-9 && count > bestCount) {
			best, bestShare, bestCount = d, share, count
		}
	}
	return best
}

// fieldCountMode returns the most common number of fields per record with delimiter d and
// the share of records having it.
func fieldCountMode(text string, d byte) (count int, share float64) {
	counts := map[int]int{}
	records := 0
	c := newSampleCSV(text, d)
	for {
		rec, err := c.Read()
		if err != nil {
			break
		}
		counts[len(rec)]++
		records++
	}
	if records == 0 {
		return 0, 0
	}
	n := 0
	for k, v := range counts {
		if v > n || (v == n && k > count) {
			count, n = k, v
		}
	}
	return count, float64(n) / float64(records)
}

// sampleRecords parses the look-ahead, for assigning the columns of a header-less file.
func sampleRecords(text string, d byte, skipFirst bool) [][]string {
	c := newSampleCSV(text, d)
	c.ReuseRecord = false
	var recs [][]string
	for {
		rec, err := c.Read()
		if err != nil {
			return recs
		}
		if skipFirst {
			skipFirst = false
			continue
		}
		recs = append(recs, rec)
	}
}

func newSampleCSV(text string, d byte) *csv.Reader {
	c := csv.NewReader(strings.NewReader(text))
	c.Comma = rune(d)
	c.LazyQuotes = true
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	return c
}

// sepDirective recognises the "sep=;" line Excel writes and reads to name the delimiter.
func sepDirective(text string) (byte, bool) {
	line, _, _ := strings.Cut(strings.TrimPrefix(text, "\ufeff"), "\n")
	if len(line) == 5 && strings.EqualFold(line[:4], "sep=") {
		d := line[4]
		if d != '"' && d < 0x80 && d != ' ' {
			return d, true
		}
	}
	return 0, false
}
