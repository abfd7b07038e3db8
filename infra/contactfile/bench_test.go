package contactfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// BenchmarkReader100k reads a 100,000-row export shaped like a Google Contacts list with a
// few columns, the size of the import the product promises to take in seconds.
func BenchmarkReader100k(b *testing.B) {
	const rows = 100_000
	var buf bytes.Buffer
	buf.WriteString("Name,Given Name,Family Name,Phone 1 - Type,Phone 1 - Value,Phone 2 - Value,E-mail 1 - Value,Group Membership,Notes\n")
	for i := range rows {
		fmt.Fprintf(&buf, "Person %d,Person,%d,Mobile,+49 151 %08d,,person%d@example.com,* myContacts ::: Customers ::: Region %d,\"Note, with comma\"\n",
			i, i, i, i, i%20)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rd, err := NewReader(bytes.NewReader(data), Opts{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
