"""The verifier reads one value written two ways as one value, and reads the auxiliary
that opens a yes/no question as the question (issue #11; each case failed before).
"""

from __future__ import annotations

import pytest

from cachekit.verify._text_lead import clash, leads
from cachekit.verify._text_normal import normalise
from tests._helpers import assert_rejected, verdict


@pytest.mark.parametrize(
    ("cached", "new"),
    [
        ("Wake me up at 6:45 pm", "Wake me up at 18:45"),
        ("Set an alarm for 7:30 am", "Set an alarm for 07:30"),
        ("Set an alarm for 7:30 am", "Set an alarm for 7:30 in the morning"),
        ("Is a salary of 85k good in Denver?", "Is a salary of 85,000 good in Denver?"),
        ("Can I send 1.5k euros abroad for free?", "Can I send 1,500 euros abroad for free?"),
        ("The startup raised 2 million dollars, is that a lot?",
         "The startup raised $2,000,000, is that a lot?"),
        ("Best rock albums of the 70s", "Best rock albums of the 1970s"),
        ("Can you deliver it on 03/15/2025?", "Can you deliver it on March 15, 2025?"),
        ("Can you deliver it on 2025-03-15?", "Can you deliver it on 15 March 2025?"),
        ("Is the office closed on Dec 24th?", "Is the office closed on December 24?"),
        ("Good evening! Can I change my seat?", "Can I change my seat?"),
        ("If you don't mind, how do I export my contacts?", "How do I export my contacts?"),
        ("pasta recipe w/o eggs", "pasta recipe without eggs"),
        ("how 2 reset my router", "how to reset my router"),
        ("What changed in Django v4.2?", "What changed in Django 4.2?"),
        ("Is $3.10 a fair price for a coffee?", "Is $3.1 a fair price for a coffee?"),
        ("How do I send an e-mail to a group?", "How do I send an email to a group?"),
        ("Best non-stop flights to Tokyo", "Best nonstop flights to Tokyo"),
        ("What's a 15% tip on $64?", "What's a fifteen percent tip on 64 dollars?"),
        # an amount written 1,000 or after a currency symbol is not the year 1000
        ("Can I deposit $1,500 in cash at the branch?",
         "Can I deposit fifteen hundred dollars in cash at the branch?"),
        ("My refund was due on 4/22 and it still hasn't arrived",
         "My refund was due on April 22 and it still hasn't arrived"),
        ("Is it permitted to bring a dog into the office?",
         "Is it allowed to bring a dog into the office?"),
        ("Who wrote War and Peace?", "Who is the author of War and Peace?"),
        ("Show prices between 5 and 10 dollars", "Show prices between 10 and 5 dollars"),
        ("Should I rest 5 or 10 minutes between sets?",
         "Should I rest 10 or 5 minutes between sets?"),
        ("What's the difference between a latte and a cappuccino?",
         "What's the difference between a cappuccino and a latte?"),
        ("Compare the iPhone 15 and the Pixel 8 cameras",
         "Compare the Pixel 8 and the iPhone 15 cameras"),
        # synonyms, their comparatives and superlatives, and abbreviations of a title or name
        ("Can I get a bigger mailbox quota?", "Can I get a larger mailbox quota?"),
        ("What's the quickest way to the airport?", "What's the fastest way to the airport?"),
        ("What are common signs of burnout?", "What are typical symptoms of burnout?"),
        ("How do I merge two PDF files?", "How do I combine two PDF files?"),
        ("My inbox is almost full, what can I delete?",
         "My inbox is nearly full, what can I delete?"),
        ("How do I change my hotel reservation?", "How do I change my hotel booking?"),
        ("Do I need a lawyer to contest a will?", "Do I need an attorney to contest a will?"),
        ("How do I resolve a merge conflict in git?", "How do I fix a merge conflict in git?"),
        # a group whose words share a stem with another group's ("canceled" = "cancel")
        ("How do I cancel my gym membership?", "How do I terminate my gym membership?"),
        ("Is Dr. Okafor taking new patients?", "Is Doctor Okafor taking new patients?"),
        ("whats the diff between map and forEach in JS",
         "What's the difference between map and forEach in JavaScript?"),
        # an auxiliary inside a wh-question, or one that asks the same thing
        ("How can I lose weight?", "How should I lose weight?"),
        ("Can you ship to Canada?", "Do you ship to Canada?"),
        ("Can I pay by card?", "May I pay by card?"),
    ],
)  # fmt: skip
def test_one_value_written_two_ways_is_one_question(cached: str, new: str) -> None:
    v = verdict(cached, new, 0.96)
    assert v.accept, v


@pytest.mark.parametrize(
    ("cached", "new", "reason", "detail"),
    [
        ("Can I return opened headphones?", "Should I return opened headphones?", "modality",
         "can vs should (opening the question)"),
        ("Do I need to renew my passport before I travel?",
         "Should I renew my passport before I travel?", "modality",
         "must vs should (opening the question)"),
        ("Has my package been delivered?", "Will my package be delivered?", "tense",
         "perfect vs will (opening the question)"),
        ("Why can't I reach 10.0.0.12 from the VPN?", "Why can't I reach 10.0.0.1 from the VPN?",
         "identifier", "10.0.0.12 vs 10.0.0.1"),
        ("Upgrade from 2.4.10 to 2.5", "Upgrade from 2.4.1 to 2.5", "identifier",
         "2.4.10 vs 2.4.1"),
        ("Remind me at 7 am to call the bank", "Remind me at 7 pm to call the bank", "time",
         "clock:7:00 vs clock:19:00"),
        ("How do I switch my plan from Verizon to AT&T?",
         "How do I switch my plan from AT&T to Verizon?", "order",
         "att: to → from; verizon: from → to"),
        ("What's new in Python 3.10?", "What's new in Python 3.1?", "number", "3.10 vs 3.1"),
        ("What was the exchange rate yesterday?", "What was the exchange rate a year ago?",
         "date", "rel:yesterday vs rel:ago"),
        ("Convert $100 to euros", "Convert 100 euros to dollars", "order",
         "unit:eur: to → none"),
        # a one-letter prefix makes another thing ("e-bike" is not a "bike")
        ("Does my insurance cover a stolen bike?", "Does my insurance cover a stolen e-bike?",
         "content", "bike vs ebike"),
        # an added word that narrows the question (travel, housing, material, status ...)
        ("Cheap flights from Oslo to Rome in May", "Cheap nonstop flights from Oslo to Rome in May",
         "scope", "nonstop only in the new prompt"),
        ("Studio apartments for rent near the campus",
         "Furnished studio apartments for rent near the campus", "scope",
         "furnished only in the new prompt"),
        ("How do I restart all pods in the namespace?",
         "How do I restart all pending pods in the namespace?", "scope",
         "pending only in the new prompt"),
        ("How do I clean a dining table?", "How do I clean a wooden dining table?", "scope",
         "wooden only in the new prompt"),
        # permission, advice and obligation words are modal ("allowed" / "required")
        ("Are contractors allowed to expense their travel?",
         "Are contractors required to expense their travel?", "modality", "may vs must"),
        # a sign in a formula is part of its numbers
        ("Factor x^2 + 7x + 12", "Factor x^2 - 7x + 12", "number", "^2+7+12 vs ^2-7+12"),
        # "string" is not "str" + "ing": the two types changed places
        ("How do I convert a String to a &str in Rust?",
         "How do I convert a &str to a String in Rust?", "order", "str: to → none"),
        # "who" asked for the other role of the same verb
        ("Who did Napoleon defeat at Austerlitz?", "Who defeated Napoleon at Austerlitz?", "order",
         "who as object vs who as subject"),
        # two amounts that changed places between two clauses ("X and Y" stays a list)
        ("I paid $30 and my brother paid $70, who owes whom?",
         "I paid $70 and my brother paid $30, who owes whom?", "order", "30 / 70"),
        # two amounts exchanged, each counting the word after it
        ("Order 2 pizzas and 3 salads for the team", "Order 3 pizzas and 2 salads for the team",
         "order", "2 / 3"),
        # a day added to the same clock time names another moment
        ("Reschedule my 3pm call to 5pm", "Reschedule my 3pm call to 5pm on Friday", "date",
         "nothing vs weekday:5"),
    ],
)  # fmt: skip
def test_what_a_format_or_an_opening_auxiliary_changes_is_rejected(
    cached: str, new: str, reason: str, detail: str
) -> None:
    assert_rejected(cached, new, reason, detail)


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("at 12 am", "at 0:00"),
        ("12pm lunch", "12:00 lunch"),
        ("by 10 at night", "by 22:00"),
        ("take 2 in the morning", "take 2 in the morning"),  # a dose, not a time
        ("13 pm", "13 pm"),
        ("$2.5k a month", "$2,500 a month"),
        ("2.345k", "2,345"),
        ("1.2345k", "1.2345k"),  # not a round amount: left as written
        ("24/12/2024", "December 24 2024"),
        ("13/13/2024", "13/13/2024"),
        ("in her late 30s", "in her late 30s"),  # an age, not a decade
        ("in the late 80s", "in the late 1980s"),
        ("good morning routine ideas", "good morning routine ideas"),
        ("4th of July", "July 4"),
    ],
)
def test_normalise_rewrites_only_what_it_can_read(text: str, out: str) -> None:
    assert normalise(text) == out


def test_leads_reads_the_auxiliary_that_opens_each_yes_no_question() -> None:
    assert leads("Hi, quick question: should I use React?") == {"should"}
    assert leads("Do I have to file a tax return?") == {"must"}
    assert leads("Didn't my order ship? It's late.") == {"past"}
    assert leads("How can I lose weight?") == frozenset()
    assert leads("May 5 is a holiday") == frozenset()  # the month
    assert leads("İs it open?") == frozenset()  # a non-ASCII letter is not an auxiliary
    assert clash(frozenset({"can"}), frozenset({"present"})) is None
    assert clash(frozenset({"present"}), frozenset({"past"})) == ("present", "past")
