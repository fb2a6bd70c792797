#include "src/wire/yaml_document.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using passgate::yaml::kMaxYamlDepth;
using passgate::yaml::kMaxYamlDocuments;
using passgate::yaml::parse_yaml_documents;
using passgate::yaml::YamlParse;

namespace {

nlohmann::json single(const std::string& text) {
    const YamlParse parse = parse_yaml_documents(text);
    INFO(parse.error);
    REQUIRE(parse.ok());
    REQUIRE(parse.documents.size() == 1);
    return parse.documents[0].value;
}

}  // namespace

TEST_CASE("yaml: documents split on ---, with their lines; empty documents are null", "[yaml]") {
    const YamlParse parse = parse_yaml_documents(
        "# a comment\n"
        "a: 1\n"
        "---\n"
        "---\n"
        "\n"
        "b: 2\n");
    REQUIRE(parse.ok());
    REQUIRE(parse.documents.size() == 3);
    CHECK(parse.documents[0].value == nlohmann::json{{"a", 1}});
    CHECK(parse.documents[0].line == 2);
    CHECK(parse.documents[1].value.is_null());
    CHECK(parse.documents[2].value == nlohmann::json{{"b", 2}});
    CHECK(parse.documents[2].line == 6);
}

TEST_CASE("yaml: text without documents has none", "[yaml]") {
    CHECK(parse_yaml_documents("").documents.empty());
    CHECK(parse_yaml_documents("# only a comment\n").ok());
    CHECK(parse_yaml_documents("# only a comment\n").documents.empty());
}

TEST_CASE("yaml: plain scalars are typed as the YAML 1.2 core schema reads them", "[yaml]") {
    const nlohmann::json value = single(
        "null1: ~\n"
        "null2: null\n"
        "null3: NULL\n"
        "null4:\n"
        "t1: true\n"
        "t2: True\n"
        "t3: TRUE\n"
        "f1: false\n"
        "yes: yes\n"      // YAML 1.1's boolean, a string in 1.2
        "on: off\n"
        "int: 443\n"
        "negative: -12\n"
        "plus: +7\n"
        "hex: 0x1F\n"
        "octal: 0o17\n"
        "leading_zero: 017\n"
        "big: 18446744073709551615\n"
        "float: 1.5\n"
        "exp: 1e3\n"
        "dot: .5\n"
        "inf: -.inf\n"
        "nan: .NaN\n"
        "version: 1.2.3\n"
        "underscore: 1_000\n"
        "hostname: passthrough.example.com\n");
    CHECK(value["null1"].is_null());
    CHECK(value["null2"].is_null());
    CHECK(value["null3"].is_null());
    CHECK(value["null4"].is_null());
    CHECK(value["t1"] == true);
    CHECK(value["t2"] == true);
    CHECK(value["t3"] == true);
    CHECK(value["f1"] == false);
    CHECK(value["yes"] == "yes");
    CHECK(value["on"] == "off");
    CHECK(value["int"].is_number_integer());
    CHECK(value["int"] == 443);
    CHECK(value["negative"] == -12);
    CHECK(value["plus"] == 7);
    CHECK(value["hex"] == 31);
    CHECK(value["octal"] == 15);
    CHECK(value["leading_zero"] == 17);  // decimal in 1.2
    CHECK(value["big"].is_number_unsigned());
    CHECK(value["float"].is_number_float());
    CHECK(value["float"] == 1.5);
    CHECK(value["exp"].is_number_float());
    CHECK(value["exp"] == 1000.0);
    CHECK(value["dot"] == 0.5);
    CHECK(std::isinf(value["inf"].get<double>()));
    CHECK(value["inf"].get<double>() < 0);
    CHECK(std::isnan(value["nan"].get<double>()));
    CHECK(value["version"] == "1.2.3");
    CHECK(value["underscore"] == "1_000");
    CHECK(value["hostname"] == "passthrough.example.com");
}

TEST_CASE("yaml: quoted and block scalars are strings; standard tags apply", "[yaml]") {
    const nlohmann::json value = single(
        "port: \"443\"\n"
        "flag: 'true'\n"
        "none: \"null\"\n"
        "block: |\n"
        "  443\n"
        "tagged_str: !!str 443\n"
        "tagged_int: !!int \"443\"\n"
        "tagged_map: !!map {a: b}\n"
        "list: [1, \"2\", x]\n");
    CHECK(value["port"] == "443");
    CHECK(value["flag"] == "true");
    CHECK(value["none"] == "null");
    CHECK(value["block"] == "443\n");
    CHECK(value["tagged_str"] == "443");
    CHECK(value["tagged_int"] == 443);
    CHECK(value["tagged_map"] == nlohmann::json{{"a", "b"}});
    CHECK(value["list"] == nlohmann::json::array({1, "2", "x"}));
}

TEST_CASE("yaml: every value's line by its field path, keys that are not identifiers quoted", "[yaml]") {
    const YamlParse parse = parse_yaml_documents(
        "apiVersion: gateway.networking.k8s.io/v1beta1\n"  // 1
        "kind: Gateway\n"                                    // 2
        "metadata:\n"                                        // 3
        "  name: eg\n"                                       // 4
        "  labels:\n"                                        // 5
        "    app.kubernetes.io/name: eg\n"                   // 6
        "spec:\n"                                            // 7
        "  listeners:\n"                                     // 8
        "  - name: http\n"                                   // 9
        "    port: 80\n"                                     // 10
        "  - name: tls\n"                                    // 11
        "    tls:\n"                                         // 12
        "      mode: Passthrough\n"                          // 13
        "    port:\n"                                        // 14
        "      6443\n");                                     // 15
    REQUIRE(parse.ok());
    const auto& document = parse.documents.at(0);
    CHECK(document.line_of("") == 1);
    CHECK(document.line_of("metadata") == 3);
    CHECK(document.line_of("metadata.name") == 4);
    CHECK(document.line_of("metadata.labels[\"app.kubernetes.io/name\"]") == 6);
    CHECK(document.line_of("spec.listeners") == 8);
    CHECK(document.line_of("spec.listeners[0]") == 9);
    CHECK(document.line_of("spec.listeners[0].port") == 10);
    CHECK(document.line_of("spec.listeners[1]") == 11);
    CHECK(document.line_of("spec.listeners[1].tls.mode") == 13);
    // A member's line is its key's, even when its value starts on a later line.
    CHECK(document.line_of("spec.listeners[1].port") == 14);
    // A field that is absent: its nearest ancestor's line.
    CHECK(document.line_of("spec.listeners[1].hostname") == 11);
    CHECK(document.line_of("spec.gatewayClassName") == 7);
    CHECK(document.line_of("status.addresses[0]") == 1);
}

TEST_CASE("yaml: anchors and aliases are refused with their line", "[yaml]") {
    const YamlParse alias = parse_yaml_documents(
        "a: 1\n"
        "b: &ports [1, 2]\n"
        "c: *ports\n");
    CHECK_FALSE(alias.ok());
    CHECK(alias.error_line == 2);
    CHECK(alias.error.find("anchors") != std::string::npos);
    CHECK(alias.documents.empty());

    // An alias to an anchor yaml-cpp never saw is its own syntax error; either way refused.
    const YamlParse bare = parse_yaml_documents("a: 1\nb: *missing\n");
    CHECK_FALSE(bare.ok());
    CHECK(bare.error_line == 2);
}

TEST_CASE("yaml: a non-standard tag is refused", "[yaml]") {
    const YamlParse parse = parse_yaml_documents("a: 1\nb: !Secret x\n");
    CHECK_FALSE(parse.ok());
    CHECK(parse.error_line == 2);
    CHECK(parse.error == "tag \"!Secret\" is not supported");
    CHECK_FALSE(parse_yaml_documents("a: !!binary aGk=\n").ok());
    CHECK_FALSE(parse_yaml_documents("a: !!int abc\n").ok());
}

TEST_CASE("yaml: a duplicate key names the key and both lines", "[yaml]") {
    const YamlParse parse = parse_yaml_documents(
        "metadata:\n"
        "  name: eg\n"
        "  namespace: default\n"
        "  name: other\n");
    CHECK_FALSE(parse.ok());
    CHECK(parse.error_line == 4);
    CHECK(parse.error == "duplicate key metadata.name (first at line 2)");
}

TEST_CASE("yaml: syntax errors carry yaml-cpp's message and the line", "[yaml]") {
    const YamlParse parse = parse_yaml_documents(
        "a: 1\n"
        "b: [1, 2\n"
        "c: 3\n");
    CHECK_FALSE(parse.ok());
    CHECK(parse.error_line >= 2);
    CHECK_FALSE(parse.error.empty());
    const YamlParse tab = parse_yaml_documents("a:\n\tb: 1\n");
    CHECK_FALSE(tab.ok());
    CHECK(tab.error_line == 2);
}

TEST_CASE("yaml: mapping keys must be scalars", "[yaml]") {
    CHECK_FALSE(parse_yaml_documents("? [a]\n: b\n").ok());
    CHECK_FALSE(parse_yaml_documents("? {a: b}\n: c\n").ok());
    CHECK(single("1: a\ntrue: b\n") == nlohmann::json{{"1", "a"}, {"true", "b"}});
}

TEST_CASE("yaml: bounds on depth, documents and size", "[yaml]") {
    std::string deep;
    for (std::size_t i = 0; i < kMaxYamlDepth; ++i) deep += "[";
    for (std::size_t i = 0; i < kMaxYamlDepth; ++i) deep += "]";
    CHECK(parse_yaml_documents(deep).ok());
    const YamlParse too_deep = parse_yaml_documents("[" + deep + "]");
    CHECK_FALSE(too_deep.ok());
    CHECK(too_deep.error.find("nested deeper than 64") != std::string::npos);

    std::string many;
    for (std::size_t i = 0; i <= kMaxYamlDocuments; ++i) many += "---\na: 1\n";
    const YamlParse too_many = parse_yaml_documents(many);
    CHECK_FALSE(too_many.ok());
    CHECK(too_many.error.find("more than 10000 documents") != std::string::npos);

    const YamlParse too_big = parse_yaml_documents(std::string(passgate::yaml::kMaxYamlBytes + 1, '#'));
    CHECK_FALSE(too_big.ok());
}

TEST_CASE("yaml: at most kMaxYamlNodes values in one document", "[yaml]") {
    std::string flow = "[0";
    for (std::size_t i = 1; i < passgate::yaml::kMaxYamlNodes; ++i) flow += ",0";  // + the list itself: one over
    flow += "]";
    const YamlParse parse = parse_yaml_documents(flow);
    CHECK_FALSE(parse.ok());
    CHECK(parse.error.find("values in one document") != std::string::npos);
}

TEST_CASE("yaml: a duplicate key of escaped bytes is named in a short message", "[yaml]") {
    // Found by fuzz_gateway_objects: 60 bytes of 0xbd escape to 240 characters.
    const std::string key = "\"" + std::string(60, '\xbd') + "\"";
    const YamlParse parse = parse_yaml_documents("a: 1\n" + key + ": 1\n" + key + ": 2\n");
    REQUIRE_FALSE(parse.ok());
    CHECK(parse.error_line == 3);
    CHECK(parse.error.rfind("duplicate key [\"\\xbd", 0) == 0);
    CHECK(parse.error.size() <= 200);
    CHECK(parse.error.find("...") != std::string::npos);
}
