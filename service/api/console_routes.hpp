#pragma once
// The web console at /ui/ (docs/api.md, "Web console"): plain HTML, CSS and JavaScript from
// service/ui/, embedded into the binary at build time (scripts/embed-files.cmake writes them as byte
// arrays into generated/console_assets.cpp), served without a token (the pages carry no data: their
// calls to the JSON API carry the bearer token the user enters) under a strict Content-Security-Policy.
// Only the embedded file names exist: anything else under /ui/ is a 404, so no path reaches the disk.
#include <span>
#include <string>
#include <string_view>

#include "service/http/http_router.hpp"

namespace omicsd {

// One embedded file of service/ui/: its name (no directories) and its bytes.
struct ConsoleAsset {
  std::string_view name;
  std::string_view bytes;
};

// Every embedded file, as built (defined in the generated console_assets.cpp).
std::span<const ConsoleAsset> console_assets();

// The media type served for an embedded file, by its extension.
std::string console_content_type(std::string_view name);

// The Content-Security-Policy of every console answer: scripts and styles from /ui/ only (nothing
// inline), data calls to the daemon itself, no frames, no plugins, no form posts elsewhere.
extern const char* const kConsoleCsp;

// GET /ui (redirect to /ui/), GET /ui/ (index.html) and GET /ui/{file}; no scope needed.
void add_console_routes(http::Router& router);

}  // namespace omicsd
