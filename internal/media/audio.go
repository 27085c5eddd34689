package media

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AudioFormats lists the format names accepted by Audio.
var AudioFormats = []string{"mp3", "wav"}

// Parameters of generated audio.
const (
	// MP3SampleRate and MP3Bitrate describe generated MP3: MPEG-1 Layer III,
	// mono, constant bitrate.
	MP3SampleRate = 44100
	MP3Bitrate    = 128000
	// WAVSampleRate is the sample rate of generated WAV (16-bit PCM, mono).
	WAVSampleRate = 24000

	mp3FrameSamples = 1152
)

// Audio returns audio of the given duration in format "mp3" or "wav"
// (case-insensitive, a leading dot is ignored); seconds must be in
// (0, MaxSeconds].
//
// MP3 is silence: a run of MPEG-1 Layer III frames (44.1 kHz, mono,
// 128 kbit/s CBR) whose side information is all zero, which every decoder
// renders as silence; its length is rounded up to a whole frame (1152
// samples, about 26 ms), and is at least two frames because demuxers
// (ffmpeg's among them) confirm an MP3 stream by finding a second frame. WAV is 16-bit PCM, mono, 24 kHz, carrying a quiet
// sine tone whose pitch derives from seed, with 20 ms fades at both ends;
// its length is exact to the sample. Unlike Video, the duration is not
// capped below MaxSeconds (600 s is about 9.6 MB of MP3 or 28.8 MB of WAV).
func Audio(format string, seconds float64, seed int64) ([]byte, error) {
	f := normFormat(format)
	if f != "mp3" && f != "wav" {
		return nil, fmt.Errorf("%w: audio format %q (valid: mp3, wav)", ErrFormat, format)
	}
	if err := checkSeconds(seconds); err != nil {
		return nil, err
	}
	if f == "mp3" {
		return silentMP3(seconds), nil
	}
	return sineWAV(seconds, seed), nil
}

// silentMP3 returns max(2, ceil(seconds*44100/1152)) silent Layer III frames. Frame
// i is floor(144*bitrate/rate) bytes plus a padding byte whenever needed to
// keep the average at exactly the nominal bitrate.
func silentMP3(seconds float64) []byte {
	n := int(math.Ceil(seconds * MP3SampleRate / mp3FrameSamples))
	n = max(n, 2)
	const num, den = 144 * MP3Bitrate, MP3SampleRate // bytes per frame = num/den
	total := n * num / den
	out := make([]byte, total)
	off := 0
	for i := 0; i < n; i++ {
		size := (i+1)*num/den - i*num/den
		pad := size - num/den // 0 or 1
		// Header: sync, MPEG-1, Layer III, no CRC | bitrate index 9
		// (128 kbit/s), 44.1 kHz, padding | mono, original.
		out[off] = 0xff
		out[off+1] = 0xfb
		out[off+2] = 0x90 | byte(pad)<<1
		out[off+3] = 0xc4
		// The 17 bytes of side information and the main data stay zero:
		// main_data_begin 0, part2_3_length 0, global_gain 0 → silence.
		off += size
	}
	return out
}

// sineWAV returns a RIFF/WAVE file of 16-bit mono PCM with a quiet tone,
// computed in integer arithmetic so that it is identical on every platform.
func sineWAV(seconds float64, seed int64) []byte {
	n := int(math.Round(seconds * WAVSampleRate))
	n = max(n, 1)
	dataLen := 2 * n
	out := make([]byte, 0, 44+dataLen)
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(36+dataLen))
	out = append(out, "WAVEfmt "...)
	out = binary.LittleEndian.AppendUint32(out, 16)              // fmt chunk size
	out = binary.LittleEndian.AppendUint16(out, 1)               // PCM
	out = binary.LittleEndian.AppendUint16(out, 1)               // channels
	out = binary.LittleEndian.AppendUint32(out, WAVSampleRate)   // sample rate
	out = binary.LittleEndian.AppendUint32(out, WAVSampleRate*2) // byte rate
	out = binary.LittleEndian.AppendUint16(out, 2)               // block align
	out = binary.LittleEndian.AppendUint16(out, 16)              // bits per sample
	out = append(out, "data"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(dataLen))

	freq := uint64(220 + seedKey(seed)%440) // Hz
	step := uint32(freq << 32 / WAVSampleRate)
	const amp = 3000 // about -20 dBFS
	fade := min(WAVSampleRate/50, n/2)
	var phase uint32
	for i := 0; i < n; i++ {
		s := int64(amp) * sinQ16(phase) >> 16
		if fade > 0 {
			if i < fade {
				s = s * int64(i) / int64(fade)
			} else if n-1-i < fade {
				s = s * int64(n-1-i) / int64(fade)
			}
		}
		out = binary.LittleEndian.AppendUint16(out, uint16(int16(s)))
		phase += step
	}
	return out
}

// sinQ16 approximates sin(2π·phase/2^32) scaled to ±65536 with Bhaskara I's
// rational formula (maximum error about 0.2%).
func sinQ16(phase uint32) int64 {
	const h = 1 << 16 // half a period
	x := int64(phase>>15) & (h - 1)
	t := x * (h - x)
	v := 16 * t * h / (5*h*h - 4*t)
	if phase&(1<<31) != 0 {
		return -v
	}
	return v
}
