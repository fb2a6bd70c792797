#include "src/wire/yaml_document.h"

#include "src/wire/field_path.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <charconv>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace passgate::yaml {
namespace {

using json = nlohmann::json;

// Paths longer than this get no line of their own (line_of falls back to an ancestor): the lines
// map then stays proportional to the node count, whatever the keys.
constexpr std::size_t kMaxRecordedPathBytes = 256;

constexpr const char* kTagPrefix = "tag:yaml.org,2002:";

// Thrown by the builder's event handlers; parse_yaml_documents turns it into YamlParse::error.
struct ParseFailure {
    int line;  // 1-based
    std::string message;
};

int line_of_mark(const YAML::Mark& mark) { return mark.line >= 0 ? mark.line + 1 : 0; }

// yaml-cpp's message ("end of map not found"; a few quote one character of the input), kept
// printable and short.
std::string library_message(const std::string& message) {
    constexpr std::size_t kMaxBytes = 120;
    std::string out;
    for (const char c : message) {
        if (out.size() >= kMaxBytes) break;
        const auto byte = static_cast<unsigned char>(c);
        out += byte >= 0x20 && byte < 0x7f ? c : '?';
    }
    return out.empty() ? std::string("not YAML") : out;
}

bool all_of(std::string_view text, bool (*accept)(char)) {
    if (text.empty()) return false;
    for (const char c : text) {
        if (!accept(c)) return false;
    }
    return true;
}

bool is_decimal_digit(char c) { return c >= '0' && c <= '9'; }
bool is_octal_digit(char c) { return c >= '0' && c <= '7'; }
bool is_hex_digit(char c) {
    return is_decimal_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_null_text(std::string_view text) {
    return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

std::optional<bool> bool_text(std::string_view text) {
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    return std::nullopt;
}

// An unsigned number in `base`; one that does not fit 64 bits is read as a float, as Go's YAML
// readers do with a too-large integer.
json unsigned_number(std::string_view digits, int base, bool negative) {
    std::uint64_t magnitude = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (error == std::errc() && end == digits.data() + digits.size()) {
        if (!negative) {
            if (magnitude <= static_cast<std::uint64_t>(INT64_MAX)) return json(static_cast<std::int64_t>(magnitude));
            return json(magnitude);
        }
        if (magnitude <= static_cast<std::uint64_t>(INT64_MAX) + 1) {
            return json(static_cast<std::int64_t>(0 - magnitude));
        }
    }
    double value = 0;
    for (const char c : digits) {
        const int digit = is_decimal_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        value = value * base + digit;
    }
    return json(negative ? -value : value);
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_float_text(std::string_view text) {
    std::size_t i = 0;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    std::size_t integer_digits = 0;
    while (i < text.size() && is_decimal_digit(text[i])) ++i, ++integer_digits;
    std::size_t fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && is_decimal_digit(text[i])) ++i, ++fraction_digits;
    }
    if (integer_digits == 0 && fraction_digits == 0) return false;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
        if (!all_of(text.substr(i), is_decimal_digit)) return false;
        return true;
    }
    return i == text.size();
}

// A plain scalar that reads as an integer or a float in the YAML 1.2 core schema.
std::optional<json> number_of(std::string_view text) {
    std::string_view body = text;
    bool negative = false;
    if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
        negative = body[0] == '-';
        body.remove_prefix(1);
    }
    if (all_of(body, is_decimal_digit)) return unsigned_number(body, 10, negative);
    if (text.size() > 2 && text[0] == '0' && text[1] == 'o' && all_of(text.substr(2), is_octal_digit)) {
        return unsigned_number(text.substr(2), 8, false);
    }
    if (text.size() > 2 && text[0] == '0' && text[1] == 'x' && all_of(text.substr(2), is_hex_digit)) {
        return unsigned_number(text.substr(2), 16, false);
    }
    if (body == ".inf" || body == ".Inf" || body == ".INF") {
        return json(negative ? -std::numeric_limits<double>::infinity()
                             : std::numeric_limits<double>::infinity());
    }
    if (text == ".nan" || text == ".NaN" || text == ".NAN") return json(std::numeric_limits<double>::quiet_NaN());
    if (is_float_text(text)) {
        double value = 0;
        const auto [end, error] = std::from_chars(text.data() + (text[0] == '+' ? 1 : 0),
                                                  text.data() + text.size(), value);
        if (end == text.data() + text.size() &&
            (error == std::errc() || error == std::errc::result_out_of_range)) {
            return json(value);
        }
    }
    return std::nullopt;
}

// A plain (unquoted, untagged) scalar, typed as the YAML 1.2 core schema reads it.
json plain_scalar(const std::string& text) {
    if (is_null_text(text)) return json(nullptr);
    if (const auto boolean = bool_text(text)) return json(*boolean);
    if (auto number = number_of(text)) return std::move(*number);
    return json(text);
}

// A scalar with an explicit standard tag (`!!str 443`, `!!int "443"`).
json tagged_scalar(const std::string& tag, const std::string& text, int line) {
    const std::string name = tag.substr(std::string_view(kTagPrefix).size());
    if (name == "str") return json(text);
    if (name == "null" && is_null_text(text)) return json(nullptr);
    if (name == "bool") {
        if (const auto boolean = bool_text(text)) return json(*boolean);
    }
    if (name == "int" || name == "float") {
        if (auto number = number_of(text)) {
            if (name == "float") return json(number->get<double>());
            if (number->is_number_integer()) return std::move(*number);
        }
    }
    throw ParseFailure{line, "a scalar tagged !!" + name + " that is not one"};
}

bool is_standard_tag(const std::string& tag, std::initializer_list<const char*> names) {
    if (tag.rfind(kTagPrefix, 0) != 0) return false;
    const std::string_view name = std::string_view(tag).substr(std::string_view(kTagPrefix).size());
    for (const char* allowed : names) {
        if (name == allowed) return true;
    }
    return false;
}

// Builds one document's JSON value from yaml-cpp's events, recording the line of every value.
class DocumentBuilder : public YAML::EventHandler {
public:
    explicit DocumentBuilder(YamlDocument& document) : document_(document) {}

    void OnDocumentStart(const YAML::Mark& mark) override { document_.line = line_of_mark(mark); }
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        refuse_anchor(mark, anchor);
        if (expecting_key()) throw ParseFailure{line_of_mark(mark), "a mapping key that is null"};
        add_value(mark, json(nullptr));
    }

    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
        throw ParseFailure{line_of_mark(mark), "aliases (*name) are not supported"};
    }

    void OnAnchor(const YAML::Mark& mark, const std::string&) override {
        throw ParseFailure{line_of_mark(mark), "anchors (&name) are not supported"};
    }

    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        refuse_anchor(mark, anchor);
        const int line = line_of_mark(mark);
        json scalar;
        if (tag == "?") {
            scalar = plain_scalar(value);
        } else if (tag == "!") {
            scalar = json(value);  // quoted or block: always a string
        } else if (is_standard_tag(tag, {"str", "int", "float", "bool", "null"})) {
            scalar = tagged_scalar(tag, value, line);
        } else {
            throw ParseFailure{line, "tag " + quoted_tag(tag) + " is not supported"};
        }
        if (expecting_key()) {
            set_key(line, value);  // the key's text, whatever it types as (JSON keys are strings)
            return;
        }
        add_value(mark, std::move(scalar));
    }

    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value) override {
        start_collection(mark, tag, anchor, "seq", json::array());
    }
    void OnSequenceEnd() override { frames_.pop_back(); }

    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value) override {
        start_collection(mark, tag, anchor, "map", json::object());
    }
    void OnMapEnd() override { frames_.pop_back(); }

private:
    struct Frame {
        json* value;              // an array or an object
        std::string path;
        std::string key;          // objects: the key whose value comes next
        bool has_key = false;
        int key_line = 0;
    };

    static std::string quoted_tag(const std::string& tag) {
        return tag.size() <= 64 && all_of(tag, [](char c) { return c > 0x20 && c < 0x7f; })
                   ? "\"" + tag + "\""
                   : std::string("(unprintable)");
    }

    static void refuse_anchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
        if (anchor != YAML::NullAnchor) {
            throw ParseFailure{line_of_mark(mark), "anchors (&name) are not supported"};
        }
    }

    bool expecting_key() const {
        return !frames_.empty() && frames_.back().value->is_object() && !frames_.back().has_key;
    }

    void set_key(int line, const std::string& key) {
        Frame& frame = frames_.back();
        if (frame.value->contains(key)) {
            const std::string path = wire::member_path(frame.path, key);
            const auto first = document_.lines.find(path);
            // The path is printable already; a long one (escaped bytes take four characters) is
            // cut so that the message stays short.
            constexpr std::size_t kShownPathBytes = 120;
            const std::string shown = path.size() <= kShownPathBytes ? path : path.substr(0, kShownPathBytes) + "...";
            throw ParseFailure{line, "duplicate key " + shown +
                                         (first != document_.lines.end()
                                              ? " (first at line " + std::to_string(first->second) + ")"
                                              : std::string())};
        }
        frame.key = key;
        frame.has_key = true;
        frame.key_line = line;
    }

    void count_node(int line) {
        if (++nodes_ > kMaxYamlNodes) {
            throw ParseFailure{line, "more than " + std::to_string(kMaxYamlNodes) + " values in one document"};
        }
    }

    void record_line(const std::string& path, int line) {
        if (path.size() <= kMaxRecordedPathBytes) document_.lines.emplace(path, line);
    }

    // Places `value` where the document is at (the root, the next element, the current key's
    // value) and returns it with its path.
    std::pair<json*, std::string> add_value(const YAML::Mark& mark, json value) {
        const int line = line_of_mark(mark);
        count_node(line);
        if (frames_.empty()) {
            if (started_) throw ParseFailure{line, "a second value at the document's root"};
            started_ = true;
            document_.line = line;
            document_.value = std::move(value);
            record_line("", line);
            return {&document_.value, std::string()};
        }
        Frame& frame = frames_.back();
        if (frame.value->is_array()) {
            const std::string path = wire::index_path(frame.path, frame.value->size());
            frame.value->push_back(std::move(value));
            record_line(path, line);
            return {&frame.value->back(), path};
        }
        // A member's line is its key's: where `port:` is written, even for a value on later lines.
        const std::string path = wire::member_path(frame.path, frame.key);
        json& member = (*frame.value)[frame.key];
        member = std::move(value);
        record_line(path, frame.key_line);
        frame.has_key = false;
        return {&member, path};
    }

    void start_collection(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                          const char* standard_tag, json empty) {
        refuse_anchor(mark, anchor);
        const int line = line_of_mark(mark);
        if (tag != "?" && tag != "!" && !is_standard_tag(tag, {standard_tag})) {
            throw ParseFailure{line, "tag " + quoted_tag(tag) + " is not supported"};
        }
        if (expecting_key()) throw ParseFailure{line, "a mapping key that is not a scalar"};
        if (frames_.size() >= kMaxYamlDepth) {
            throw ParseFailure{line, "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels"};
        }
        auto [value, path] = add_value(mark, std::move(empty));
        frames_.push_back(Frame{value, std::move(path), {}, false, 0});
    }

    YamlDocument& document_;
    std::vector<Frame> frames_;
    std::size_t nodes_ = 0;
    bool started_ = false;
};

}  // namespace

int YamlDocument::line_of(const std::string& field) const {
    if (const auto found = lines.find(field); found != lines.end()) return found->second;
    // The nearest ancestor: cut at each '.' or '[' from the end.
    for (std::size_t end = field.size(); end > 0; --end) {
        const char c = field[end - 1];
        if (c != '.' && c != '[') continue;
        if (const auto found = lines.find(field.substr(0, end - 1)); found != lines.end()) {
            return found->second;
        }
    }
    if (const auto found = lines.find(""); found != lines.end()) return found->second;
    return line;
}

YamlParse parse_yaml_documents(std::string_view text) {
    YamlParse result;
    if (text.size() > kMaxYamlBytes) {
        result.error = "YAML text of " + std::to_string(text.size()) + " bytes, more than " +
                       std::to_string(kMaxYamlBytes);
        return result;
    }
    try {
        std::istringstream stream{std::string(text)};
        YAML::Parser parser(stream);
        while (true) {
            YamlDocument document;
            DocumentBuilder builder(document);
            if (!parser.HandleNextDocument(builder)) break;
            if (result.documents.size() >= kMaxYamlDocuments) {
                throw ParseFailure{document.line, "more than " + std::to_string(kMaxYamlDocuments) + " documents"};
            }
            result.documents.push_back(std::move(document));
        }
    } catch (const ParseFailure& failure) {
        result.error = failure.message;
        result.error_line = failure.line;
    } catch (const YAML::Exception& error) {
        result.error = library_message(error.msg);
        result.error_line = line_of_mark(error.mark);
    } catch (const std::bad_alloc&) {
        result.error = "out of memory reading " + std::to_string(text.size()) + " bytes of YAML";
    } catch (const std::exception&) {
        result.error = "not YAML";
    }
    if (!result.ok()) result.documents.clear();
    return result;
}

}  // namespace passgate::yaml
