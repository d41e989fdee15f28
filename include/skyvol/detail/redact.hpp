#ifndef SKYVOL_DETAIL_REDACT_HPP
#define SKYVOL_DETAIL_REDACT_HPP

/// @file
/// Makes text from outside (a server's error message, an excerpt of a reply) safe for a log line
/// or an error message: servers echo requests, and a request carries keys, tokens and signatures.

#include <skyvol/detail/percent_encoding.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace skyvol::detail {

inline constexpr std::string_view redaction = "****";

/// Replaces every occurrence of `secret` in `text` (nothing if it is empty).
inline void redact_each(std::string& text, std::string_view secret) {
    if (secret.empty()) return;
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + redaction.size()))
        text.replace(at, secret.size(), redaction);
}

/// Whether a field of this (lower-case) name holds a secret: signatures (SigV4's `Signature`,
/// `X-Amz-Signature`, SAS's `sig`), tokens (session, security, bearer, refresh, SAS), keys
/// (`SecretAccessKey`, Azure's `AccountKey`, private keys), credentials and passwords.
inline bool names_secret(std::string_view name) {
    static constexpr std::array<std::string_view, 6> parts = {
        "signature", "token", "secret", "credential", "password", "authorization"};
    static constexpr std::array<std::string_view, 4> whole = {"sig", "accountkey", "private_key",
                                                              "privatekey"};
    for (const auto part : parts)
        if (name.find(part) != std::string_view::npos) return true;
    return std::find(whole.begin(), whole.end(), name) != whole.end();
}

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// Authorization schemes whose next word is the credentials (SigV4's: its parameters), found
/// in prose too. (`Basic` and `AWS` are words of prose as well; after `Authorization:` any
/// scheme counts.)
inline bool is_scheme(std::string_view name) {
    return name == "bearer" || name == "sharedkey" || name == "sharedkeylite" ||
           name == "aws4-hmac-sha256";
}

inline bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

/// Where a secret value that starts at `from` ends: at a space, a quote or a separator of
/// headers, query strings, XML and JSON. Base64's `+`, `/` and `=` are part of the value.
inline std::size_t value_end(std::string_view text, std::size_t from) {
    static constexpr std::string_view stops = " \t\r\n\"'&,;<>()[]{}";
    const std::size_t end = text.find_first_of(stops, from);
    return end == std::string_view::npos ? text.size() : end;
}

/// Redacts the value after each `name=`, `"name": "` and `<name>` whose name is a secret's,
/// after the headers `Authorization:` and `X-...-Token:`, and after a scheme (`Bearer`...).
inline void redact_fields(std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c != '=' && c != ':' && c != '>' && c != ' ') continue;
        // The name before the separator, past a closing quote and spaces.
        std::size_t name_end = i;
        if (c == ':')
            while (name_end > 0 && (text[name_end - 1] == ' ' || text[name_end - 1] == '"'))
                --name_end;
        std::size_t name_start = name_end;
        while (name_start > 0 && is_name_char(text[name_start - 1]))
            --name_start;
        if (name_start == name_end) continue;
        const std::string name =
            lower(std::string_view(text).substr(name_start, name_end - name_start));
        bool secret = false;
        if (c == '=') // a query string or an Authorization value's parameter
            secret = names_secret(name);
        else if (c == '>') // an XML element
            secret = name_start > 0 && text[name_start - 1] == '<' && names_secret(name);
        else if (c == ':' && text[name_end] == '"') // a JSON member: the name was quoted
            secret = names_secret(name);
        else if (c == ':') // a header; not an error code (`InvalidToken: The token...`)
            secret = name == "authorization" || name == "proxy-authorization" ||
                     (name.starts_with("x-") && names_secret(name));
        else // the credentials after an Authorization scheme
            secret = is_scheme(name);
        if (!secret) continue;
        std::size_t from = i + 1;
        while (from < text.size() && (text[from] == ' ' || text[from] == '"'))
            ++from;
        std::size_t end = value_end(text, from);
        // `Authorization: Scheme credentials`: the scheme stays, the word after it goes.
        if (c == ':' && end + 1 < text.size() && text[end] == ' ' && end > from &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(from),
                        text.begin() + static_cast<std::ptrdiff_t>(end), is_name_char)) {
            from = end + 1;
            end = value_end(text, from);
        }
        if (end == from || text.compare(from, end - from, redaction) == 0) continue;
        text.replace(from, end - from, redaction);
        i = from + redaction.size() - 1;
    }
}

/// `text` with each non-empty secret in `known` (as is and percent-encoded) replaced by
/// "****", and the value of every field whose name says it holds a secret as well.
inline std::string redact_secrets(std::string text, std::initializer_list<std::string_view> known) {
    for (const std::string_view secret : known) {
        redact_each(text, secret);
        if (!secret.empty()) redact_each(text, percent_encode(secret, true));
    }
    redact_fields(text);
    return text;
}

/// `text` with the value of every credential-shaped field replaced by "****".
inline std::string redact_secrets(std::string text) {
    return redact_secrets(std::move(text), {});
}

} // namespace skyvol::detail

#endif
