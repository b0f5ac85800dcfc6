#pragma once
// Read groups (@RG header lines) of SAM/BAM/CRAM inputs: the sample names they declare.
#include <string>
#include <string_view>
#include <vector>

namespace omicsd {

// The distinct SM values of the @RG lines in a SAM header text (or any text of header lines), in the
// order of their first appearance. A line without SM contributes nothing.
std::vector<std::string> read_group_samples(std::string_view header_text);

// The @RG lines ('\n'-separated, no trailing newline) of a SAM/BAM/CRAM file's header; empty for a
// file of another format (FASTQ) or without read groups. Reads only the header. Throws InputError
// when the file cannot be opened or a SAM/BAM/CRAM header cannot be read.
std::string read_group_lines_of_file(const std::string& path);

}  // namespace omicsd
