package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// File signatures (magic bytes) of the extensions the API accepts, so an
// upload named .png is a PNG. Formats with several layouts list each.

// sigHead is how many leading bytes the checks need.
const sigHead = 16

type signature func(head []byte) bool

func prefix(p string) signature {
	return func(h []byte) bool { return bytes.HasPrefix(h, []byte(p)) }
}

func at(off int, p string) signature {
	return func(h []byte) bool { return len(h) >= off+len(p) && string(h[off:off+len(p)]) == p }
}

func anyOf(s ...signature) signature {
	return func(h []byte) bool {
		for _, f := range s {
			if f(h) {
				return true
			}
		}
		return false
	}
}

func riff(form string) signature {
	return func(h []byte) bool { return prefix("RIFF")(h) && at(8, form)(h) }
}

// isoBMFF matches the MP4 family (mp4, m4v, mov, m4a, avif, heic): an
// "ftyp" box first, or a QuickTime file starting with another atom.
var isoBMFF = anyOf(at(4, "ftyp"), at(4, "moov"), at(4, "mdat"), at(4, "wide"), at(4, "free"), at(4, "skip"))

// mpegAudioFrame is an MPEG audio frame sync (11 bits set), as MP3 files
// without an ID3 tag start.
func mpegAudioFrame(h []byte) bool { return len(h) >= 2 && h[0] == 0xFF && h[1]&0xE0 == 0xE0 }

var signatures = map[string]signature{
	"png":  prefix("\x89PNG\r\n\x1a\n"),
	"jpg":  prefix("\xff\xd8\xff"),
	"jpeg": prefix("\xff\xd8\xff"),
	"webp": riff("WEBP"),
	"avif": isoBMFF,
	"jp2":  anyOf(prefix("\x00\x00\x00\x0cjP  \r\n\x87\n"), prefix("\xff\x4f\xff\x51")),
	"tiff": anyOf(prefix("II*\x00"), prefix("MM\x00*"), prefix("II+\x00"), prefix("MM\x00+")),
	"bmp":  prefix("BM"),
	"gif":  anyOf(prefix("GIF87a"), prefix("GIF89a")),
	"mp4":  isoBMFF,
	"m4v":  isoBMFF,
	"mov":  isoBMFF,
	"webm": prefix("\x1a\x45\xdf\xa3"),
	"mp3":  anyOf(prefix("ID3"), mpegAudioFrame),
	"mpeg": anyOf(prefix("ID3"), mpegAudioFrame, prefix("\x00\x00\x01\xba"), prefix("\x00\x00\x01\xb3")),
	"wav":  riff("WAVE"),
	"aac":  anyOf(prefix("ID3"), func(h []byte) bool { return len(h) >= 2 && h[0] == 0xFF && h[1]&0xF6 == 0xF0 }, prefix("ADIF"), isoBMFF),
	"aiff": func(h []byte) bool { return prefix("FORM")(h) && (at(8, "AIFF")(h) || at(8, "AIFC")(h)) },
	"flac": anyOf(prefix("fLaC"), prefix("ID3")),
}

// errSignature: the file's content is not what its extension says.
type errSignature struct{ ext string }

func (e errSignature) Error() string {
	return fmt.Sprintf("the file's content is not a %s file (its first bytes do not match the .%s signature); check the extension or the file", e.ext, e.ext)
}

// checkSignature returns a reader of the whole of r after checking that
// its first bytes match ext's signature (extensions without one pass).
func checkSignature(r io.Reader, ext string) (io.Reader, error) {
	sig, ok := signatures[ext]
	br := bufio.NewReaderSize(r, 4096)
	if !ok {
		return br, nil
	}
	head, err := br.Peek(sigHead)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		if len(head) == 0 || errors.Is(err, errBodyTimeout) {
			return nil, err
		}
	}
	if len(head) == 0 {
		return br, nil // empty: storeUpload refuses it with its own message
	}
	if !sig(head) {
		return nil, errSignature{ext}
	}
	return br, nil
}
