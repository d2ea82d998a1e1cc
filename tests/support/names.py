"""The one corpus of hostile usernames every test of names, folders and logins uses.

Each entry is ``(kind, name)``; the kind is what reports count. Names cover path
tricks, look-alikes, escape collisions, long names, control characters, LDAP
metacharacters, blanks, and names that Swarm's stricter service names refuse.
"""

from __future__ import annotations

from labhub.lab.names import MAX_NAME_LENGTH, user_folder_name

#: (class, name); the class is what the report's table counts.
HOSTILE: list[tuple[str, str]] = [
    # path tricks
    ("path", ".."),
    ("path", "."),
    ("path", "../../etc"),
    ("path", "a/../../b"),
    ("path", "/etc/passwd"),
    ("path", "a\\..\\..\\b"),
    ("path", "%2e%2e"),
    ("path", "%2e%2e%2fetc"),
    ("path", "~root"),
    ("path", ".hidden"),
    ("path", ".creating-abc"),
    ("path", "-rf"),
    ("path", "shared_notebooks"),
    # case and unicode look-alikes
    ("lookalike", "Alice"),
    ("lookalike", "ALICE"),
    ("lookalike", "\u0430lice"),  # Cyrillic a
    ("lookalike", "\uff41\uff4c\uff49\uff43\uff45"),  # fullwidth alice
    ("lookalike", "alice\u200b"),  # zero-width space
    ("lookalike", "ali\u0301ce"),  # combining accent
    ("lookalike", "alic\u00e9"),
    ("lookalike", "stra\u00dfe"),
    ("lookalike", "\u0130stanbul"),
    ("lookalike", "a\u202eecila"),  # right-to-left override
    # escape-character collisions: a name that looks like another user's escaped folder
    ("collision", "alice"),
    ("collision", user_folder_name("Alice")),
    ("collision", user_folder_name("\u0430lice")),
    ("collision", "alice--" + "0" * 12),
    ("collision", "a-b"),
    ("collision", "a_b"),
    ("collision", "a.b"),
    ("collision", "a b"),
    ("collision", "a%20b"),
    # long names
    ("long", "x" * 1000),
    ("long", "x" * 999 + "y"),
    ("long", "\u00e9" * 300),
    ("long", "a" * MAX_NAME_LENGTH),
    ("long", "a" * (MAX_NAME_LENGTH + 1)),
    # control characters
    ("control", "a\x00b"),
    ("control", "a\nb"),
    ("control", "a\tb"),
    ("control", "a\rb"),
    ("control", "\x1b[31mred"),
    ("control", "a\x7fb"),
    # LDAP filter and DN metacharacters
    ("ldap", "*"),
    ("ldap", "a*"),
    ("ldap", "a)(uid=*"),
    ("ldap", "*)(|(uid=*"),
    ("ldap", "cn=admin,dc=lab"),
    ("ldap", "a,b"),
    ("ldap", "a+b"),
    ("ldap", "#a"),
    ("ldap", "a;b"),
    ("ldap", "a\\2a"),
    ("ldap", '"quoted"'),
    ("ldap", "<a>"),
    # blank
    ("blank", ""),
    ("blank", " "),
    ("blank", " alice"),
    # names other lists held: shell, e-mail, emoji, reserved, service-name breakers
    ("more", "/"),
    ("more", "a/b"),
    ("more", "$HOME"),
    ("more", "`id`"),
    ("more", "user@example.com"),
    ("more", "USER@example.com"),
    ("more", "émilie"),
    ("more", "émilie"),
    ("more", "ｅｍｉｌｉｅ"),
    ("long", "x" * 200),
    ("more", "-dash"),
    ("more", "a--b"),
    ("more", "a."),
    ("more", "😀"),
    ("more", "日本語"),
    ("more", "user--"),
    ("more", "--user"),
    ("more", "CON"),
    ("more", "a..b"),
    ("more", "a.b.."),
    ("more", "dot..dot"),
    ("long", "x" * 150),
]

#: The names alone, without repeats, in corpus order.
HOSTILE_USERNAMES: list[str] = list(dict.fromkeys(name for _kind, name in HOSTILE))
