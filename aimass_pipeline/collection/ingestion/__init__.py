"""A landed file streamed through its contract: readers per format, the contract's row rules in Arrow, the
source sniffing (binary, encoding, header), and the stream into accepted rows and rejects."""
