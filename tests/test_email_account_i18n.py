"""Greek and English: what the addon shows, in el_GR and in en_US."""

from lxml import etree

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged

from odoo.addons.base.tests.common import DISABLED_MAIL_CONTEXT
from odoo.addons.email_account.smtp_engine.tests.servers import (
    LoopbackSmtpServer,
    refused_port,
)

from .common import load_greek

# Attributes of our views that the user reads.
SHOWN_ATTRIBUTES = ("string", "help", "placeholder", "title", "confirm")
# Texts that are the same in both languages.
SAME_IN_GREEK = {"STARTTLS", "SSL/TLS", "SPF", "DKIM", "DMARC"}


@tagged("post_install", "-at_install")
class TestEmailAccountI18n(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, **DISABLED_MAIL_CONTEXT))
        load_greek(cls.env)
        cls.account = cls.env["email.account"].create(
            {
                "name": "Sales",
                "sender_name": "Sales Department",
                "sender_email": "sales@example.com",
                "smtp_host": "127.0.0.1",
                "smtp_port": refused_port(),
                "smtp_timeout": 5,
            }
        )

    def in_lang(self, lang, records=None):
        return (records or self.account).with_context(lang=lang)

    # Fields

    def test_field_labels_use_the_original_form_terms(self):
        expected = {
            "name": ("Όνομα λογαριασμού", "Account Name"),
            "username": ("Όνομα χρήστη", "Username"),
            "password": ("Κωδικός χρήστη", "Password"),
            "sender_name": ("Όνομα αποστολέα", "Sender Name"),
            "sender_email": ("Διεύθυνση email αποστολέα", "Sender Email Address"),
            "smtp_host": ("IP ή όνομα SMTP Server", "SMTP Server"),
            "smtp_port": ("SMTP Server Port", "SMTP Port"),
            "smtp_encryption": ("Χρήση SSL", "Connection Security"),
            "smtp_timeout": ("SMTP Time Out", "SMTP Timeout"),
            "smtp_auth_required": (
                "Ο διακομιστής απαιτεί πιστοποίηση",
                "Server Requires Authentication",
            ),
            "smtp_login": ("Ξεχωριστό όνομα χρήστη", "Separate Login"),
            "smtp_password": ("Ξεχωριστός κωδικός χρήστη", "Separate Password"),
            "test_state": ("Κατάσταση ελέγχου", "Test Status"),
        }
        for lang, index in (("el_GR", 0), ("en_US", 1)):
            fields = self.in_lang(lang).fields_get(list(expected), ["string"])
            for name, labels in expected.items():
                with self.subTest(lang=lang, field=name):
                    self.assertEqual(fields[name]["string"], labels[index])

    def test_field_help(self):
        fields_el = self.in_lang("el_GR").fields_get(["smtp_auth_required"], ["help"])
        self.assertEqual(
            fields_el["smtp_auth_required"]["help"],
            "Επιλέξτε το εάν ο διακομιστής απαιτεί από τον client να κάνει "
            "πιστοποίηση (authentication) πριν από την αποστολή μηνύματος.",
        )
        fields_en = self.in_lang("en_US").fields_get(["smtp_auth_required"], ["help"])
        self.assertEqual(
            fields_en["smtp_auth_required"]["help"],
            "Tick it if the server requires the client to log in before sending "
            "a message.",
        )

    def test_every_field_label_and_help_is_greek(self):
        # Fields that other modules add to every mail.thread (sms, ...) are
        # translated by those modules' catalogues.
        ours = (
            self.env["ir.model.data"]
            .search(
                [("module", "=", "email_account"), ("model", "=", "ir.model.fields")]
            )
            .mapped("res_id")
        )
        # A module installed after ours can still add fields to the mixins
        # we use (calendar adds one to mail.activity.mixin): its catalogue,
        # not ours, translates them.
        ours_or_dependencies = {"email_account"} | set(
            self.env["ir.module.module"]
            .search([("name", "=", "email_account")])
            .upstream_dependencies(exclude_states=("uninstallable",))
            .mapped("name")
        )
        model_fields = self.env["email.account"]._fields
        names = (
            self.env["ir.model.fields"]
            .browse(ours)
            .filtered(
                lambda field: (
                    field.model == "email.account"
                    and model_fields[field.name]._module in ours_or_dependencies
                )
            )
            .mapped("name")
        )
        self.assertIn("smtp_host", names)
        fields_el = self.in_lang("el_GR").fields_get(names, ["string", "help"])
        fields_en = self.in_lang("en_US").fields_get(names, ["string", "help"])
        for name, field_en in fields_en.items():
            for attribute in ("string", "help"):
                english = field_en.get(attribute)
                if not english or english in SAME_IN_GREEK:
                    continue
                with self.subTest(field=name, attribute=attribute):
                    self.assertNotEqual(fields_el[name][attribute], english)

    def test_selection_values(self):
        for lang, security, states in (
            (
                "el_GR",
                [("none", "Κανένα"), ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")],
                [
                    ("untested", "Δεν έχει ελεγχθεί"),
                    ("ok", "Λειτουργεί"),
                    ("failed", "Αποτυχία"),
                ],
            ),
            (
                "en_US",
                [("none", "None"), ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")],
                [("untested", "Untested"), ("ok", "Working"), ("failed", "Failed")],
            ),
        ):
            fields = self.in_lang(lang).fields_get(
                ["smtp_encryption", "test_state"], ["selection"]
            )
            with self.subTest(lang=lang):
                self.assertEqual(fields["smtp_encryption"]["selection"], security)
                self.assertEqual(fields["test_state"]["selection"], states)

    # Views, menus, actions, groups

    def get_archs(self, lang):
        views = (
            self.env["email.account"]
            .with_context(lang=lang)
            .get_views([(False, "form"), (False, "list"), (False, "search")])
        )
        return {
            view_type: etree.fromstring(views["views"][view_type]["arch"])
            for view_type in ("form", "list", "search")
        }

    def test_form_in_greek(self):
        form = self.get_archs("el_GR")["form"]
        button = form.xpath("//button[@name='action_send_test_message']")[0]
        self.assertEqual(button.get("string"), "Έλεγχος Ρυθμίσεων Λογαριασμού ...")
        self.assertEqual(
            [group.get("string") for group in form.xpath("//group[@string]")],
            [
                "Λογαριασμός",
                "Αποστολέας",
                "Διακομιστής",
                "Πιστοποίηση",
                "Έλεγχος παράδοσης",
                "Ποιος μπορεί να στέλνει",
                "Τελευταίος έλεγχος",
                "Παράδοση και εμπιστοσύνη",
            ],
        )
        self.assertEqual(
            form.xpath("//field[@name='smtp_host']")[0].get("placeholder"),
            "π.χ. smtp.example.com",
        )
        self.assertIn(
            "δευτερόλεπτα",
            form.xpath("//field[@name='smtp_timeout']/following-sibling::span")[0].text,
        )

    def test_form_in_english(self):
        form = self.get_archs("en_US")["form"]
        button = form.xpath("//button[@name='action_send_test_message']")[0]
        self.assertEqual(button.get("string"), "Check Account Settings ...")
        self.assertEqual(
            form.xpath("//field[@name='smtp_timeout']/following-sibling::span")[0].text,
            "seconds",
        )

    def test_every_view_text_is_greek(self):
        archs_el, archs_en = self.get_archs("el_GR"), self.get_archs("en_US")
        for view_type, arch_en in archs_en.items():
            nodes_el = list(archs_el[view_type].iter())
            nodes_en = list(arch_en.iter())
            self.assertEqual(len(nodes_el), len(nodes_en))
            for node_el, node_en in zip(nodes_el, nodes_en, strict=True):
                texts = [(attr, node_en.get(attr)) for attr in SHOWN_ATTRIBUTES]
                texts.append(("text", node_en.text))
                for attribute, english in texts:
                    if not english or not english.strip() or english in SAME_IN_GREEK:
                        continue
                    greek = (
                        node_el.text if attribute == "text" else node_el.get(attribute)
                    )
                    with self.subTest(view=view_type, text=english):
                        self.assertNotEqual(greek, english)

    def test_list_and_search_in_greek(self):
        archs = self.get_archs("el_GR")
        self.assertEqual(archs["list"].get("string"), "Λογαριασμοί email")
        self.assertEqual(archs["search"].get("string"), "Αναζήτηση λογαριασμών email")
        filters = {
            node.get("name"): node.get("string")
            for node in archs["search"].iter("filter")
        }
        self.assertEqual(filters["filter_failed"], "Αποτυχία")
        self.assertEqual(filters["filter_untested"], "Δεν έχει ελεγχθεί")
        self.assertEqual(filters["filter_working"], "Λειτουργεί")
        self.assertEqual(filters["group_by_test_state"], "Κατάσταση ελέγχου")

    def test_menus_actions_and_groups(self):
        expected = {
            "email_account.email_account_menu_root": (
                "Λογαριασμοί email",
                "Email Accounts",
            ),
            "email_account.email_account_menu": ("Λογαριασμοί email", "Email Accounts"),
            "email_account.email_account_action": (
                "Λογαριασμοί email",
                "Email Accounts",
            ),
            "email_account.email_account_action_check_settings": (
                "Έλεγχος Ρυθμίσεων Λογαριασμού",
                "Check Account Settings",
            ),
            "email_account.group_email_account_user": ("Χρήστης", "User"),
            "email_account.group_email_account_manager": ("Διαχειριστής", "Manager"),
            "email_account.res_groups_privilege_email_account": (
                "Λογαριασμοί email",
                "Email Accounts",
            ),
        }
        for xmlid, names in expected.items():
            record = self.env.ref(xmlid)
            for lang, name in zip(("el_GR", "en_US"), names, strict=True):
                with self.subTest(xmlid=xmlid, lang=lang):
                    self.assertEqual(record.with_context(lang=lang).name, name)
        action = self.env.ref("email_account.email_account_action")
        self.assertIn(
            "Δημιουργήστε έναν λογαριασμό email",
            action.with_context(lang="el_GR").help,
        )

    # Messages

    def test_validation_error(self):
        with self.assertRaisesRegex(
            ValidationError,
            r"^Το SMTP Server Port πρέπει να είναι μεταξύ 1 και 65535 "
            r"\(καταχωρήσατε 70000\)\.$",
        ):
            self.in_lang("el_GR").smtp_port = 70000
        with self.assertRaisesRegex(
            ValidationError,
            r"^The SMTP port must be between 1 and 65535 \(you entered 70000\)\.$",
        ):
            self.in_lang("en_US").smtp_port = 70000

    def test_failed_check_in_greek(self):
        action = self.in_lang("el_GR").action_send_test_message()
        self.assertEqual(self.account.test_step, "Σύνδεση με τον διακομιστή")
        lines = action["params"]["message"].split("\n")
        self.assertEqual(
            lines[0], "Ο έλεγχος απέτυχε στο βήμα «Σύνδεση με τον διακομιστή»."
        )
        self.assertEqual(
            lines[-1],
            "Κανείς δεν δέχτηκε τη σύνδεση σε αυτόν τον διακομιστή και αυτή την "
            "πόρτα. Ελέγξτε το όνομα του διακομιστή και την πόρτα, καθώς και ότι "
            "κανένα τείχος προστασίας (firewall) δεν μπλοκάρει τη σύνδεση.",
        )
        self.assertEqual(
            self.account.message_ids[0].subject, "Έλεγχος ρυθμίσεων λογαριασμού"
        )
        self.assertEqual(
            action["params"]["title"], "Ο έλεγχος των ρυθμίσεων του λογαριασμού απέτυχε"
        )

    def test_failed_check_in_english(self):
        action = self.in_lang("en_US").action_send_test_message()
        self.assertEqual(action["params"]["title"], "The account settings check failed")
        lines = action["params"]["message"].split("\n")
        self.assertEqual(
            lines[0], "The test failed at the step “Connecting to the server”."
        )
        self.assertTrue(lines[-1].startswith("Nothing accepted the connection"))

    def test_test_message_in_greek_and_english(self):
        for lang, subject, intro, security, title in (
            (
                "el_GR",
                "Δοκιμαστικό μήνυμα από τον λογαριασμό email Sales",
                (
                    "Αυτό το μήνυμα στάλθηκε για τον έλεγχο των ρυθμίσεων του "
                    "λογαριασμού email Sales."
                ),
                "Χρήση SSL: Κανένα",
                "Το δοκιμαστικό μήνυμα στάλθηκε",
            ),
            (
                "en_US",
                "Test message from e-mail account Sales",
                (
                    "This message was sent to check the settings of the e-mail "
                    "account Sales."
                ),
                "Security: None",
                "Test message sent",
            ),
        ):
            with self.subTest(lang=lang), LoopbackSmtpServer() as server:
                self.account.smtp_port = server.port
                action = self.in_lang(lang).action_send_test_message()
                self.assertEqual(len(server.messages), 1)
                message = server.messages[0].message
                self.assertEqual(message["Subject"], subject)
                body = message.get_body(("plain",)).get_content()
                self.assertTrue(body.startswith(intro), body)
                self.assertIn(security, body)
                self.assertEqual(action["params"]["title"], title)
