"""Deterministic demo data for jobmatch: Nigerian job postings and job seekers.

Everything is generated from the plain tables below with a private
``random.Random(seed)``, so the same seed (and ``today``) always gives the same
rows, a fresh clone needs no data files or network, and the global random state
is never touched.  Seekers are drawn from the same occupation families as jobs,
so real matches exist.  All companies are fictional.
"""
from __future__ import annotations

import datetime as dt
import random

__all__ = ["JOB_COLUMNS", "SEEKER_COLUMNS", "families", "family_of_role", "generate_jobs",
           "generate_jobs_with_family", "generate_seekers"]

JOB_COLUMNS: tuple[str, ...] = (
    "title", "company", "description", "location", "posted_date", "ai_job_titles",
    "ai_job_function", "ai_job_level", "ai_industry", "ai_city", "ai_state", "ai_country",
    "ai_work_arrangement", "ai_remote_allowed", "ai_employment_type", "ai_required_skills",
    "ai_preferred_skills", "ai_years_experience_min", "ai_years_experience_max",
    "ai_salary_min", "ai_salary_max", "ai_salary_currency", "ai_summary",
)
SEEKER_COLUMNS: tuple[str, ...] = (
    "user_id", "job_roles", "job_categories", "user_job_input", "experience_level",
    "years_of_experience", "technical_skills", "soft_skills", "preferred_locations",
    "user_location_input", "willing_to_relocate", "work_arrangements", "employment_types",
    "salary_min", "salary_max", "salary_currency", "company_size_preference",
    "industry_preferences",
)

# --------------------------------------------------------------------------- tables

LEVELS = ("Entry", "Mid", "Senior", "Lead", "Manager")
JOB_LEVEL_WEIGHTS = (22, 34, 26, 8, 10)
SEEKER_LEVELS = ("Entry", "Mid", "Senior", "Lead")
SEEKER_LEVEL_WEIGHTS = (35, 35, 22, 8)
YEARS = {"Entry": (0, 2), "Mid": (2, 5), "Senior": (5, 10), "Lead": (7, 12), "Manager": (8, 15)}
ARRANGEMENTS = ("On-site", "Hybrid", "Remote")
EMPLOYMENT_TYPES = ("Full-time", "Part-time", "Contract", "Internship")
COMPANY_SIZES = ("Startup", "SME", "Large enterprise")

# Annual NGN salary bands (min, max) per seniority level; each family names a scale.
SALARY_SCALES = {
    "basic": {"Entry": (840_000, 1_500_000), "Mid": (1_200_000, 2_100_000),
              "Senior": (1_800_000, 3_000_000), "Lead": (2_400_000, 3_600_000),
              "Manager": (3_000_000, 4_800_000)},
    "skilled": {"Entry": (1_200_000, 2_400_000), "Mid": (2_400_000, 4_200_000),
                "Senior": (3_600_000, 6_000_000), "Lead": (4_800_000, 8_400_000),
                "Manager": (6_000_000, 10_800_000)},
    "professional": {"Entry": (1_800_000, 3_600_000), "Mid": (3_600_000, 7_200_000),
                     "Senior": (6_000_000, 12_000_000), "Lead": (9_000_000, 16_800_000),
                     "Manager": (10_800_000, 21_600_000)},
    "tech": {"Entry": (2_400_000, 6_000_000), "Mid": (6_000_000, 12_000_000),
             "Senior": (12_000_000, 24_000_000), "Lead": (18_000_000, 36_000_000),
             "Manager": (21_600_000, 42_000_000)},
    "oilgas": {"Entry": (3_600_000, 7_200_000), "Mid": (7_200_000, 14_400_000),
               "Senior": (14_400_000, 30_000_000), "Lead": (24_000_000, 42_000_000),
               "Manager": (30_000_000, 60_000_000)},
}
# Annual USD bands for the few remote jobs paid in dollars.
USD_BANDS = {"Entry": (12_000, 24_000), "Mid": (24_000, 48_000), "Senior": (48_000, 84_000),
             "Lead": (72_000, 120_000), "Manager": (84_000, 140_000)}

# (city, state, weight) -- weighted towards Lagos and Abuja.
CITIES = (
    ("Ikeja", "Lagos", 14), ("Lekki", "Lagos", 10), ("Victoria Island", "Lagos", 10),
    ("Yaba", "Lagos", 8), ("Abuja", "FCT", 18), ("Port Harcourt", "Rivers", 8),
    ("Ibadan", "Oyo", 6), ("Kano", "Kano", 4), ("Enugu", "Enugu", 4), ("Benin City", "Edo", 4),
    ("Kaduna", "Kaduna", 3), ("Abeokuta", "Ogun", 3), ("Uyo", "Akwa Ibom", 2),
    ("Warri", "Delta", 3), ("Owerri", "Imo", 2), ("Jos", "Plateau", 2), ("Ilorin", "Kwara", 2),
)

# Fictional employers grouped by the industry they hire for ("Diversified" hire for anything).
COMPANIES_BY_INDUSTRY = {
    "Technology": ("Kelechi Software House", "Yaba Codeworks", "Obinna Tech Solutions",
                   "Ifedayo Insights Analytics", "Osaro Cyber Defence"),
    "Fintech": ("Abiola Paycircle Fintech", "Kudibridge Payments"),
    "E-commerce": ("Nkem Online Market", "Oja Express Shop"),
    "Media": ("Kolanut Media",), "Advertising": ("Adire Digital Studio", "Temitope Creative Agency"),
    "Telecommunications": ("Ebube Telecom Services", "Sadiq Telecom Infrastructure"),
    "Banking": ("Oduduwa Crest Bank", "Nupe Commercial Bank"),
    "Microfinance": ("Zainab Credit Microfinance", "Mobolaji Microfinance Bank"),
    "Investment Management": ("Chinwe Capital Partners",),
    "FMCG": ("Ada Eze Foods Ltd", "Omolara Beauty Products"),
    "Manufacturing": ("Agbara Steelworks Ltd", "Adunni Print & Packaging", "Ahmadu Textiles Co."),
    "Professional Services": ("Okoro Emeka & Co. Chartered Accountants", "Kunle Ajayi Consulting",
                              "Obi & Adewale Partners"),
    "Real Estate": ("Akinola Estates & Facilities", "Tunde Bakare Architects"),
    "Oil & Gas": ("Okeke Oilfield Services", "Delta Creekside Energy", "Warri Pipeline Engineering"),
    "Energy": ("Tamuno Energy Ltd",), "Power": ("Danjuma Power Systems",),
    "Renewable Energy": ("Ekene Solar Solutions",),
    "Healthcare": ("Amaka Home Healthcare", "Ugochi Nursing Services"),
    "Hospitals": ("Hauwa Specialist Hospital", "Lekki Palmview Clinic"),
    "Pharmaceuticals": ("Ayomide Pharmacy & Stores",),
    "Diagnostics": ("Chidera Diagnostics Centre", "Emeka Nwosu Medical Labs"),
    "Retail": ("Uche Freshmart Supermarket", "Nneka Fashion House"),
    "Education": ("Ijeoma Learning Academy", "Ilorin Crescent Schools", "Chiamaka Learning Hub"),
    "Logistics": ("Eko Brightway Logistics", "Mainland Swift Dispatch", "Bamidele Haulage Services",
                  "Garba Freight Forwarders", "Yakubu Cargo Express"),
    "Agriculture": ("Benue Valley Farms", "Ogun Greenacres Farms", "Arewa Sunfields Agro"),
    "Agro-processing": ("Zaria Grainmill Ltd", "Oyo Cocoa Collective", "Bello Agro Allied",
                        "Jos Plateau Dairy"),
    "Hospitality": ("Lagoon Crest Hotels", "Uyo Coastline Hotels", "Mojisola Events & Hospitality"),
    "Food & Beverage": ("Ibeji Twins Bakery",), "Catering": ("Funmilayo Catering Services",),
    "Tourism": ("Idanre Hilltop Resorts",),
    "Construction": ("Ikenna Build & Construct", "Nwachukwu Civil Works"),
    "Infrastructure": ("Gidan Ruwa Water Solutions",),
    "Facilities Management": ("Sapele Facility Services",),
    "Security Services": ("Odua Shield Security",), "Legal Services": ("Fola Adeyemi Legal Chambers",),
    "NGO": ("Ndidi Care Foundation", "Ebonyi Hope Development Initiative"),
    "International Development": ("Sahel Bridge Development Partners",),
    "Diversified": ("Kanem Tradelinks", "Anambra Motorworks", "Ifeanyi Precision Engineering",
                    "Adeleke-Bassey Group", "Ogbonna Holdings", "Bassey & Etim Ventures",
                    "Garuba Industries Ltd", "Oduya Group", "Ogunleye Holdings"),
}
COMPANIES = tuple(name for names in COMPANIES_BY_INDUSTRY.values() for name in names)

GENERIC_SOFT = ("Communication", "Teamwork", "Time management", "Problem solving",
                "Adaptability", "Leadership", "Work ethic", "Customer focus")

# Occupation families. "scale" names a SALARY_SCALES entry; "remote" says whether the
# work can be done remotely; optional "hubs" are cities where such jobs cluster.
FAMILIES = (
    {"title": "Backend Developer", "manager": "Engineering Manager", "function": "Software Engineering",
     "variants": ["Backend Engineer", "Software Engineer", "Python Developer", "Node.js Developer", "Java Developer"],
     "industries": ["Technology", "Fintech", "E-commerce"], "scale": "tech", "remote": True,
     "skills": ["Python", "Node.js", "Java", "Django", "Express.js", "REST APIs", "PostgreSQL", "MySQL",
                "Redis", "Docker", "Git", "Microservices", "Unit testing", "AWS"],
     "preferred": ["Kubernetes", "GraphQL", "Kafka", "Go", "System design"],
     "soft": ["Problem solving", "Collaboration", "Ownership"]},
    {"title": "Frontend Developer", "manager": "Frontend Engineering Manager", "function": "Software Engineering",
     "variants": ["Frontend Engineer", "React Developer", "Web Developer", "UI Developer"],
     "industries": ["Technology", "E-commerce", "Media"], "scale": "tech", "remote": True,
     "skills": ["JavaScript", "TypeScript", "React", "Next.js", "HTML", "CSS", "Tailwind CSS", "Redux",
                "Responsive design", "Git", "Jest", "Web performance", "Accessibility"],
     "preferred": ["Vue.js", "Figma", "Storybook", "Cypress"],
     "soft": ["Attention to detail", "Collaboration", "Communication"]},
    {"title": "Mobile App Developer", "manager": "Mobile Engineering Manager", "function": "Software Engineering",
     "variants": ["Mobile Developer", "Android Developer", "iOS Developer", "Flutter Developer", "React Native Developer"],
     "industries": ["Technology", "Fintech", "Telecommunications"], "scale": "tech", "remote": True,
     "skills": ["Kotlin", "Swift", "Flutter", "Dart", "React Native", "Android SDK", "Firebase", "REST APIs",
                "Git", "App Store deployment", "Mobile UI design", "Offline storage"],
     "preferred": ["Jetpack Compose", "SwiftUI", "CI/CD", "Push notifications"],
     "soft": ["Problem solving", "Ownership", "Teamwork"]},
    {"title": "DevOps Engineer", "manager": "Infrastructure Manager", "function": "Information Technology",
     "variants": ["Site Reliability Engineer", "Cloud Engineer", "Platform Engineer", "Infrastructure Engineer"],
     "industries": ["Technology", "Fintech", "Telecommunications"], "scale": "tech", "remote": True,
     "skills": ["Linux", "Docker", "Kubernetes", "Terraform", "AWS", "Azure", "CI/CD", "Bash scripting",
                "Prometheus", "Grafana", "Nginx", "Ansible", "Git"],
     "preferred": ["Google Cloud", "Helm", "Go", "Incident management"],
     "soft": ["Calm under pressure", "Ownership", "Communication"]},
    {"title": "Data Analyst", "manager": "Analytics Manager", "function": "Data & Analytics",
     "variants": ["Business Intelligence Analyst", "Data Analytics Associate", "Reporting Analyst", "Insights Analyst"],
     "industries": ["Technology", "Banking", "FMCG", "Telecommunications"], "scale": "professional", "remote": True,
     "skills": ["SQL", "Excel", "Power BI", "Tableau", "Python", "Pandas", "Data visualisation", "Data cleaning",
                "Statistics", "Google Sheets", "Dashboard design", "A/B testing"],
     "preferred": ["Looker Studio", "dbt", "BigQuery", "Machine learning"],
     "soft": ["Analytical thinking", "Storytelling", "Attention to detail"]},
    {"title": "IT Support Specialist", "manager": "IT Manager", "function": "Information Technology",
     "variants": ["IT Support Officer", "Helpdesk Technician", "Desktop Support Engineer", "IT Technician"],
     "industries": ["Technology", "Banking", "Education", "Healthcare"], "scale": "skilled", "remote": False,
     "skills": ["Windows administration", "Active Directory", "Microsoft 365", "Hardware troubleshooting",
                "Networking basics", "LAN/WAN setup", "Printer support", "Ticketing systems",
                "Antivirus management", "Software installation", "Backup and recovery", "CCTV installation"],
     "preferred": ["CompTIA A+", "CCNA", "ITIL", "Linux"],
     "soft": ["Patience", "Customer focus", "Communication"]},
    {"title": "Cybersecurity Analyst", "manager": "Information Security Manager", "function": "Information Technology",
     "variants": ["Information Security Analyst", "SOC Analyst", "Security Engineer", "Penetration Tester"],
     "industries": ["Banking", "Fintech", "Telecommunications", "Technology"], "scale": "tech", "remote": True,
     "skills": ["SIEM", "Splunk", "Incident response", "Vulnerability assessment", "Penetration testing",
                "Firewalls", "ISO 27001", "Network security", "Threat intelligence",
                "Identity and access management", "PCI DSS", "Wireshark"],
     "preferred": ["CISSP", "CEH", "Cloud security", "Python"],
     "soft": ["Integrity", "Analytical thinking", "Calm under pressure"]},
    {"title": "Accountant", "manager": "Finance Manager", "function": "Finance & Accounting",
     "variants": ["Accounts Officer", "Staff Accountant", "Accounting Officer", "Finance Officer", "Bookkeeper"],
     "industries": ["Manufacturing", "FMCG", "Professional Services", "Real Estate"], "scale": "professional", "remote": True,
     "skills": ["Bookkeeping", "Financial reporting", "IFRS", "Bank reconciliation", "Accounts payable",
                "Accounts receivable", "General ledger", "Payroll", "Tax computation", "QuickBooks", "Sage",
                "Excel", "Budgeting", "VAT returns"],
     "preferred": ["ICAN", "ACCA", "SAP FICO", "Audit preparation"],
     "soft": ["Integrity", "Attention to detail", "Time management"]},
    {"title": "Auditor", "manager": "Audit Manager", "function": "Finance & Accounting",
     "variants": ["External Auditor", "Internal Auditor", "Audit Associate", "Audit Officer"],
     "industries": ["Professional Services", "Banking", "Oil & Gas"], "scale": "professional", "remote": False,
     "skills": ["Audit planning", "Risk assessment", "Internal controls", "IFRS", "ISA standards",
                "Audit sampling", "Financial statement analysis", "Compliance review", "Working papers",
                "Excel", "Fraud detection", "Report writing"],
     "preferred": ["ICAN", "ACCA", "CISA", "Data analytics for audit"],
     "soft": ["Integrity", "Professional scepticism", "Communication"]},
    {"title": "Financial Analyst", "manager": "FP&A Manager", "function": "Finance & Accounting",
     "variants": ["Finance Analyst", "FP&A Analyst", "Investment Analyst", "Business Analyst (Finance)"],
     "industries": ["Banking", "Investment Management", "FMCG", "Fintech"], "scale": "professional", "remote": True,
     "skills": ["Financial modelling", "Excel", "Forecasting", "Budgeting", "Variance analysis", "Valuation",
                "Financial reporting", "PowerPoint", "Cash flow analysis", "Scenario analysis",
                "Bloomberg Terminal", "Management reporting"],
     "preferred": ["CFA", "Power BI", "SQL", "VBA"],
     "soft": ["Analytical thinking", "Presentation", "Attention to detail"]},
    {"title": "Relationship Manager", "manager": "Head, Relationship Management", "function": "Banking",
     "variants": ["Relationship Officer", "Account Officer", "Business Development Officer (Banking)", "Corporate Banking Officer"],
     "industries": ["Banking", "Microfinance", "Fintech"], "scale": "professional", "remote": False,
     "skills": ["Client relationship management", "Deposit mobilisation", "Credit appraisal", "Cross-selling",
                "Account opening", "KYC", "Loan processing", "Sales targets", "Financial products",
                "Customer retention", "CRM software", "Market research"],
     "preferred": ["CIBN", "Corporate banking", "Treasury products", "Negotiation"],
     "soft": ["Persuasion", "Networking", "Resilience"]},
    {"title": "Bank Teller", "manager": "Branch Operations Manager", "function": "Banking",
     "variants": ["Teller", "Cashier (Banking)", "Customer Service Officer (Banking)", "Banking Operations Officer"],
     "industries": ["Banking", "Microfinance"], "scale": "skilled", "remote": False,
     "skills": ["Cash handling", "Counterfeit detection", "Customer service", "Account opening", "KYC",
                "Core banking software", "Finacle", "Cheque processing", "Balancing tills", "Fund transfers",
                "Anti-money laundering", "Data entry"],
     "preferred": ["CIBN", "Flexcube", "Cross-selling", "Complaint resolution"],
     "soft": ["Integrity", "Accuracy", "Courtesy"]},
    {"title": "Credit Analyst", "manager": "Credit Risk Manager", "function": "Banking",
     "variants": ["Credit Officer", "Credit Risk Analyst", "Loan Officer", "Risk Analyst"],
     "industries": ["Banking", "Microfinance", "Fintech"], "scale": "professional", "remote": True,
     "skills": ["Credit analysis", "Credit scoring", "Financial statement analysis", "Loan portfolio monitoring",
                "Risk assessment", "Collateral evaluation", "Excel", "Credit bureau checks", "Loan recovery",
                "Regulatory reporting", "Cash flow analysis", "Credit policy"],
     "preferred": ["SQL", "Python", "CIBN", "IFRS 9"],
     "soft": ["Sound judgement", "Analytical thinking", "Integrity"]},
    {"title": "Sales Executive", "manager": "Sales Manager", "function": "Sales",
     "variants": ["Sales Representative", "Sales Officer", "Business Development Executive", "Field Sales Agent", "Marketer"],
     "industries": ["FMCG", "Real Estate", "Fintech", "Telecommunications", "Manufacturing"], "scale": "skilled", "remote": False,
     "skills": ["Prospecting", "Cold calling", "Negotiation", "Closing deals", "Lead generation", "CRM software",
                "Product demonstration", "Territory management", "Sales reporting", "Customer onboarding",
                "Market research", "Pipeline management"],
     "preferred": ["HubSpot", "B2B sales", "Key account management", "Public speaking"],
     "soft": ["Persuasion", "Resilience", "Self-motivation"]},
    {"title": "Digital Marketing Specialist", "manager": "Marketing Manager", "function": "Marketing",
     "variants": ["Digital Marketer", "Social Media Manager", "Growth Marketer", "Performance Marketing Specialist", "Marketing Executive"],
     "industries": ["Technology", "E-commerce", "FMCG", "Media"], "scale": "professional", "remote": True,
     "skills": ["Social media marketing", "SEO", "Google Ads", "Meta Ads", "Content strategy", "Email marketing",
                "Google Analytics", "Copywriting", "Campaign management", "Influencer marketing",
                "Marketing analytics", "Community management"],
     "preferred": ["HubSpot", "Canva", "Mailchimp", "TikTok marketing"],
     "soft": ["Creativity", "Communication", "Adaptability"]},
    {"title": "Customer Service Representative", "manager": "Customer Service Manager", "function": "Customer Service",
     "variants": ["Customer Service Officer", "Customer Care Agent", "Call Centre Agent", "Customer Support Representative", "Customer Experience Associate"],
     "industries": ["Telecommunications", "E-commerce", "Fintech", "Banking"], "scale": "skilled", "remote": True,
     "skills": ["Customer service", "Complaint resolution", "Phone etiquette", "Live chat support", "Email support",
                "CRM software", "Zendesk", "Freshdesk", "Data entry", "Ticket management", "Upselling",
                "Product knowledge"],
     "preferred": ["Yoruba", "Hausa", "Igbo", "Pidgin English", "Microsoft Office"],
     "soft": ["Empathy", "Patience", "Active listening"]},
    {"title": "Registered Nurse", "manager": "Nurse Manager", "function": "Healthcare",
     "variants": ["Staff Nurse", "Nursing Officer", "Clinical Nurse", "ICU Nurse", "Nurse Midwife"],
     "industries": ["Healthcare", "Hospitals"], "scale": "skilled", "remote": False,
     "skills": ["Patient assessment", "Medication administration", "Vital signs monitoring", "Wound care",
                "IV cannulation", "Infection control", "Patient education", "Nursing documentation",
                "Basic life support", "Triage", "Care planning", "Electronic health records"],
     "preferred": ["Advanced cardiac life support", "Midwifery", "Paediatric care", "Theatre nursing"],
     "soft": ["Compassion", "Teamwork", "Calm under pressure"]},
    {"title": "Pharmacist", "manager": "Pharmacy Manager", "function": "Healthcare",
     "variants": ["Community Pharmacist", "Hospital Pharmacist", "Clinical Pharmacist", "Superintendent Pharmacist"],
     "industries": ["Healthcare", "Pharmaceuticals", "Retail"], "scale": "professional", "remote": False,
     "skills": ["Dispensing", "Prescription review", "Drug interaction checks", "Patient counselling",
                "Inventory management", "Pharmacovigilance", "Compounding", "Regulatory compliance",
                "Pharmacy software", "Stock control", "Clinical pharmacology", "Good dispensing practice"],
     "preferred": ["PCN licence", "NAFDAC regulations", "Pharmaceutical sales", "Supply chain"],
     "soft": ["Integrity", "Attention to detail", "Communication"]},
    {"title": "Medical Laboratory Scientist", "manager": "Laboratory Manager", "function": "Healthcare",
     "variants": ["Lab Scientist", "Medical Lab Technician", "Laboratory Technologist", "Clinical Laboratory Scientist"],
     "industries": ["Healthcare", "Diagnostics", "Research"], "scale": "skilled", "remote": False,
     "skills": ["Haematology", "Clinical chemistry", "Microbiology", "Phlebotomy", "Sample processing",
                "Microscopy", "Blood banking", "Quality control", "Laboratory information systems", "Serology",
                "PCR testing", "Biosafety"],
     "preferred": ["MLSCN licence", "ISO 15189", "Histopathology", "Equipment calibration"],
     "soft": ["Accuracy", "Attention to detail", "Teamwork"]},
    {"title": "Secondary School Teacher", "manager": "Head of Department", "function": "Education",
     "variants": ["Mathematics Teacher", "English Teacher", "Science Teacher", "Class Teacher", "Subject Teacher"],
     "industries": ["Education"], "scale": "basic", "remote": False,
     "skills": ["Lesson planning", "Classroom management", "Curriculum delivery", "Student assessment",
                "WAEC syllabus", "Report writing", "Differentiated instruction", "Mathematics",
                "English language", "Physics", "Chemistry", "Parent communication"],
     "preferred": ["TRCN certification", "Google Classroom", "Cambridge IGCSE", "Extracurricular coaching"],
     "soft": ["Patience", "Communication", "Creativity"]},
    {"title": "Logistics Coordinator", "manager": "Logistics Manager", "function": "Logistics & Supply Chain",
     "variants": ["Logistics Officer", "Dispatch Coordinator", "Fleet Coordinator", "Shipping Coordinator"],
     "industries": ["Logistics", "E-commerce", "FMCG", "Manufacturing"], "scale": "skilled", "remote": False,
     "skills": ["Route planning", "Fleet management", "Shipment tracking", "Inventory management",
                "Warehouse operations", "Last-mile delivery", "Customs documentation", "Vendor coordination",
                "Excel", "Delivery scheduling", "Freight forwarding", "Proof of delivery"],
     "preferred": ["SAP", "GPS tracking systems", "Import/export", "Cold chain"],
     "soft": ["Organisation", "Problem solving", "Communication"]},
    {"title": "Procurement Officer", "manager": "Procurement Manager", "function": "Logistics & Supply Chain",
     "variants": ["Purchasing Officer", "Procurement Analyst", "Buyer", "Supply Chain Officer", "Sourcing Specialist"],
     "industries": ["Manufacturing", "Oil & Gas", "FMCG", "Agro-processing"], "scale": "professional", "remote": False,
     "skills": ["Vendor sourcing", "Purchase orders", "Supplier evaluation", "Contract negotiation", "Cost analysis",
                "Tender management", "Inventory control", "Spend analysis", "Excel",
                "Supplier relationship management", "Procurement policy", "Request for quotation"],
     "preferred": ["CIPS", "SAP MM", "Import/export", "NIPEX registration"],
     "soft": ["Negotiation", "Integrity", "Organisation"]},
    {"title": "Delivery Driver", "manager": "Fleet Manager", "function": "Driving & Transport",
     "variants": ["Driver", "Van Driver", "Truck Driver", "Company Driver", "Dispatch Rider"],
     "industries": ["Logistics", "E-commerce", "FMCG"], "scale": "basic", "remote": False,
     "skills": ["Defensive driving", "Valid driver's licence", "Route knowledge", "Vehicle inspection",
                "Basic vehicle maintenance", "Delivery documentation", "Cash on delivery handling",
                "GPS navigation", "Load securing", "Customer handover", "Trip logging", "Road safety"],
     "preferred": ["Motorcycle riding", "Heavy goods vehicle licence", "Lagos road knowledge", "Smartphone apps"],
     "soft": ["Punctuality", "Reliability", "Courtesy"]},
    {"title": "Chef", "manager": "Executive Chef", "function": "Hospitality",
     "variants": ["Cook", "Sous Chef", "Kitchen Assistant", "Line Cook", "Pastry Chef"],
     "industries": ["Hospitality", "Food & Beverage", "Catering"], "scale": "basic", "remote": False,
     "skills": ["Nigerian cuisine", "Continental dishes", "Food safety", "Menu planning", "Food costing",
                "Kitchen hygiene", "Baking", "Grilling", "Portion control", "Stock rotation", "Event catering",
                "Knife skills"],
     "preferred": ["HACCP", "Pastry", "Food presentation", "Kitchen management"],
     "soft": ["Teamwork", "Working under pressure", "Creativity"]},
    {"title": "Hotel Front Desk Officer", "manager": "Front Office Manager", "function": "Hospitality",
     "variants": ["Receptionist", "Front Office Agent", "Guest Relations Officer", "Front Desk Agent"],
     "industries": ["Hospitality", "Tourism"], "scale": "basic", "remote": False,
     "skills": ["Guest check-in", "Reservations management", "Opera PMS", "Customer service", "Cash handling",
                "Telephone handling", "Complaint resolution", "Room allocation", "Invoice preparation",
                "POS operation", "Microsoft Office", "Guest relations"],
     "preferred": ["French", "Channel managers", "Night audit", "Upselling"],
     "soft": ["Courtesy", "Patience", "Communication"]},
    {"title": "Civil Engineer", "manager": "Project Manager (Civil)", "function": "Engineering",
     "variants": ["Structural Engineer", "Site Engineer", "Project Engineer (Civil)", "Highway Engineer"],
     "industries": ["Construction", "Real Estate", "Infrastructure"], "scale": "professional", "remote": False,
     "skills": ["AutoCAD", "Structural analysis", "Site supervision", "Bill of quantities", "Quantity estimation",
                "Concrete technology", "Surveying", "Road design", "Reinforced concrete design",
                "Project scheduling", "Quality control", "Construction safety", "Revit"],
     "preferred": ["COREN registration", "Primavera P6", "SAP2000", "Drainage design"],
     "soft": ["Leadership", "Problem solving", "Attention to detail"]},
    {"title": "Mechanical Engineer", "manager": "Maintenance Manager", "function": "Engineering",
     "variants": ["Maintenance Engineer", "Plant Engineer", "HVAC Engineer", "Mechanical Design Engineer"],
     "industries": ["Manufacturing", "Oil & Gas", "Power", "FMCG"], "scale": "professional", "remote": False,
     "skills": ["Preventive maintenance", "SolidWorks", "AutoCAD", "HVAC systems", "Pumps and compressors",
                "Root cause analysis", "Hydraulics", "Pneumatics", "Welding inspection", "Machine installation",
                "Diesel generators", "Technical drawing"],
     "preferred": ["COREN registration", "CMMS", "Six Sigma", "Boiler operations"],
     "soft": ["Problem solving", "Safety mindset", "Teamwork"]},
    {"title": "Electrical Engineer", "manager": "Electrical Engineering Manager", "function": "Engineering",
     "variants": ["Electrical Maintenance Engineer", "Power Systems Engineer", "Electrical Design Engineer", "Solar PV Engineer"],
     "industries": ["Power", "Renewable Energy", "Manufacturing", "Construction"], "scale": "professional", "remote": False,
     "skills": ["Power distribution", "Electrical installation", "PLC programming", "Solar PV design",
                "Inverter systems", "Transformers", "Switchgear maintenance", "Electrical drawings",
                "Load calculations", "Protection relays", "AutoCAD Electrical", "Earthing systems"],
     "preferred": ["COREN registration", "SCADA", "ETAP", "Battery storage systems"],
     "soft": ["Safety mindset", "Problem solving", "Attention to detail"]},
    {"title": "Petroleum Engineer", "manager": "Reservoir Engineering Manager", "function": "Oil & Gas",
     "variants": ["Reservoir Engineer", "Production Engineer", "Drilling Engineer", "Well Engineer"],
     "industries": ["Oil & Gas", "Energy"], "scale": "oilgas", "remote": False,
     "hubs": ["Port Harcourt", "Warri", "Victoria Island", "Uyo"],
     "skills": ["Reservoir simulation", "Well testing", "Production optimisation", "Drilling operations", "Petrel",
                "Eclipse", "Well completion", "Artificial lift", "Nodal analysis", "Petroleum economics",
                "Decline curve analysis", "Well intervention"],
     "preferred": ["Python", "Gas processing", "NUPRC regulations", "Offshore experience"],
     "soft": ["Analytical thinking", "Safety mindset", "Teamwork"]},
    {"title": "HSE Officer", "manager": "HSE Manager", "function": "Oil & Gas",
     "variants": ["Health and Safety Officer", "Safety Officer", "HSE Coordinator", "QHSE Officer"],
     "industries": ["Oil & Gas", "Construction", "Manufacturing"], "scale": "professional", "remote": False,
     "hubs": ["Port Harcourt", "Warri", "Uyo"],
     "skills": ["Risk assessment", "Incident investigation", "Permit to work", "Safety audits", "Toolbox talks",
                "Emergency response", "PPE compliance", "Job hazard analysis", "Environmental monitoring",
                "HSE reporting", "Fire safety", "First aid"],
     "preferred": ["NEBOSH", "ISO 45001", "OSHA", "IOSH"],
     "soft": ["Vigilance", "Communication", "Leadership"]},
    {"title": "Agronomist", "manager": "Farm Manager", "function": "Agriculture",
     "variants": ["Agricultural Officer", "Farm Supervisor", "Extension Officer", "Crop Production Officer"],
     "industries": ["Agriculture", "Agro-processing"], "scale": "skilled", "remote": False,
     "hubs": ["Kano", "Kaduna", "Jos", "Ibadan", "Abeokuta", "Ilorin"],
     "skills": ["Crop management", "Soil testing", "Pest and disease control", "Fertiliser application",
                "Irrigation", "Farm records", "Extension services", "Seed selection", "Post-harvest handling",
                "Greenhouse management", "Farmer training", "Yield estimation"],
     "preferred": ["GIS mapping", "Poultry management", "Agribusiness", "Hausa"],
     "soft": ["Patience", "Communication", "Adaptability"]},
    {"title": "HR Officer", "manager": "HR Manager", "function": "Human Resources",
     "variants": ["Human Resources Officer", "HR Generalist", "HR Business Partner", "HR Assistant", "People Operations Associate"],
     "industries": ["Professional Services", "Technology", "Manufacturing", "Banking"], "scale": "professional", "remote": True,
     "skills": ["Recruitment", "Onboarding", "Payroll administration", "Employee relations",
                "Performance management", "HRIS", "Labour law", "Training coordination",
                "Compensation and benefits", "Pension administration", "Job descriptions", "Exit interviews"],
     "preferred": ["CIPM", "SHRM", "BambooHR", "Talent sourcing"],
     "soft": ["Confidentiality", "Empathy", "Communication"]},
    {"title": "Legal Counsel", "manager": "Head of Legal", "function": "Legal",
     "variants": ["Legal Officer", "Company Secretary", "In-house Lawyer", "Legal Associate"],
     "industries": ["Legal Services", "Banking", "Oil & Gas", "Real Estate"], "scale": "professional", "remote": False,
     "skills": ["Contract drafting", "Legal research", "Corporate governance", "Regulatory compliance",
                "Litigation", "Due diligence", "CAC filings", "Dispute resolution", "Legal opinions",
                "Company law", "Employment law", "Intellectual property"],
     "preferred": ["Nigerian Bar admission", "Data protection law", "Arbitration", "Tax law"],
     "soft": ["Integrity", "Attention to detail", "Negotiation"]},
    {"title": "Administrative Assistant", "manager": "Office Manager", "function": "Administration",
     "variants": ["Admin Officer", "Office Assistant", "Executive Assistant", "Secretary", "Virtual Assistant", "Personal Assistant"],
     "industries": ["Professional Services", "Real Estate", "NGO", "Education"], "scale": "skilled", "remote": True,
     "skills": ["Microsoft Office", "Calendar management", "Minute taking", "Filing and records",
                "Travel arrangements", "Correspondence drafting", "Front desk support", "Data entry",
                "Petty cash management", "Google Workspace", "Event coordination", "Office supplies management"],
     "preferred": ["Fast typing", "Bookkeeping", "Asana", "French"],
     "soft": ["Organisation", "Discretion", "Time management"]},
    {"title": "Electrician", "manager": "Electrical Works Supervisor", "function": "Construction & Trades",
     "variants": ["Electrical Technician", "Maintenance Electrician", "Solar Installer", "Installation Electrician"],
     "industries": ["Construction", "Power", "Facilities Management"], "scale": "basic", "remote": False,
     "skills": ["Electrical wiring", "Conduit installation", "Fault finding", "Distribution board installation",
                "Solar panel installation", "Inverter installation", "Generator changeover", "Cable termination",
                "Meter installation", "Multimeter use", "Lighting installation", "Electrical safety"],
     "preferred": ["City & Guilds", "Trade test certificate", "CCTV installation", "Air conditioner repair"],
     "soft": ["Reliability", "Safety mindset", "Problem solving"]},
    {"title": "Construction Site Supervisor", "manager": "Construction Manager", "function": "Construction & Trades",
     "variants": ["Site Supervisor", "Foreman", "Construction Supervisor", "Works Supervisor"],
     "industries": ["Construction", "Real Estate", "Infrastructure"], "scale": "skilled", "remote": False,
     "skills": ["Site supervision", "Blockwork", "Concrete works", "Reading drawings", "Labour management",
                "Material take-off", "Daily site reports", "Formwork", "Plastering and finishing",
                "Construction safety", "Quality checks", "Scheduling subcontractors"],
     "preferred": ["Tiling", "Roofing", "Plumbing", "Health and safety certificate"],
     "soft": ["Leadership", "Reliability", "Communication"]},
    {"title": "Graphic Designer", "manager": "Design Manager", "function": "Design & Media",
     "variants": ["Visual Designer", "Brand Designer", "UI/UX Designer", "Product Designer", "Creative Designer"],
     "industries": ["Media", "Advertising", "Technology", "E-commerce"], "scale": "professional", "remote": True,
     "skills": ["Adobe Photoshop", "Adobe Illustrator", "Figma", "CorelDRAW", "Typography", "Branding",
                "Layout design", "Social media graphics", "Print design", "Colour theory", "Wireframing",
                "Adobe InDesign"],
     "preferred": ["Motion graphics", "After Effects", "Canva", "Illustration"],
     "soft": ["Creativity", "Attention to detail", "Openness to feedback"]},
    {"title": "Content Writer", "manager": "Content Manager", "function": "Design & Media",
     "variants": ["Copywriter", "Content Creator", "Content Strategist", "Journalist", "Editor"],
     "industries": ["Media", "Advertising", "Technology", "Education"], "scale": "skilled", "remote": True,
     "skills": ["Copywriting", "SEO writing", "Editing", "Proofreading", "Research", "Blog writing",
                "Scriptwriting", "Content calendars", "WordPress", "Social media content", "Storytelling",
                "AP style"],
     "preferred": ["Video editing", "Podcast production", "Google Analytics", "Technical writing"],
     "soft": ["Creativity", "Curiosity", "Time management"]},
    {"title": "Security Officer", "manager": "Security Manager", "function": "Security",
     "variants": ["Security Guard", "Security Supervisor", "Patrol Officer", "Loss Prevention Officer", "Estate Security Officer"],
     "industries": ["Security Services", "Facilities Management", "Oil & Gas", "Retail"], "scale": "basic", "remote": False,
     "skills": ["Access control", "Patrolling", "CCTV monitoring", "Incident reporting", "Visitor screening",
                "Emergency response", "Crowd control", "Key control", "Vehicle search", "Radio communication",
                "Fire safety", "Asset protection"],
     "preferred": ["Military or police background", "First aid", "Driving", "Self-defence"],
     "soft": ["Vigilance", "Integrity", "Discipline"]},
    {"title": "Telecoms Engineer", "manager": "Network Operations Manager", "function": "Telecommunications",
     "variants": ["RF Engineer", "Network Engineer", "Transmission Engineer", "Field Engineer (Telecoms)", "NOC Engineer"],
     "industries": ["Telecommunications", "Technology"], "scale": "professional", "remote": False,
     "skills": ["RF planning", "Drive testing", "Microwave transmission", "Fibre optics", "BTS installation",
                "LTE/4G", "5G NR", "Network monitoring", "Cisco routing", "IP networking", "Site surveys",
                "Telecom site power systems"],
     "preferred": ["CCNP", "Vendor certification", "Python", "OSS tools"],
     "soft": ["Problem solving", "Teamwork", "Safety mindset"]},
    {"title": "Monitoring & Evaluation Officer", "manager": "M&E Manager", "function": "Development & NGO",
     "variants": ["M&E Officer", "MEAL Officer", "Monitoring and Evaluation Assistant", "Data Quality Officer"],
     "industries": ["NGO", "International Development", "Healthcare"], "scale": "professional", "remote": True,
     "hubs": ["Abuja", "Kano", "Kaduna", "Jos"],
     "skills": ["M&E frameworks", "Logframes", "Data collection", "KoboToolbox", "ODK", "Survey design",
                "Indicator tracking", "SPSS", "Stata", "Report writing", "Data quality assessment", "DHIS2"],
     "preferred": ["Power BI", "GIS mapping", "Hausa", "Donor reporting"],
     "soft": ["Analytical thinking", "Integrity", "Communication"]},
    {"title": "Program Officer", "manager": "Programme Manager", "function": "Development & NGO",
     "variants": ["Programme Officer", "Project Officer", "Programme Associate", "Project Coordinator", "Community Development Officer"],
     "industries": ["NGO", "International Development", "Education", "Agriculture"], "scale": "professional", "remote": True,
     "hubs": ["Abuja", "Kano", "Kaduna", "Jos", "Enugu"],
     "skills": ["Project management", "Proposal writing", "Donor reporting", "Stakeholder engagement",
                "Budget monitoring", "Community mobilisation", "Work planning", "Partner management",
                "Capacity building", "Grant management", "Report writing", "Safeguarding"],
     "preferred": ["PMP", "Gender mainstreaming", "Humanitarian response", "Hausa"],
     "soft": ["Leadership", "Cultural sensitivity", "Communication"]},
)

# --------------------------------------------------------------------------- text templates

JOB_INTROS = (
    "{company} is hiring {a_title} {place}.",
    "We are looking for {a_title} to join {company} {place}.",
    "{company}, a growing {industry} business, needs {a_title} {place}.",
    "Exciting opportunity for {a_title} at {company} {place}.",
)
JOB_DUTIES = (
    "You will be responsible for {a} and {b}.",
    "Day-to-day work covers {a}, {b} and {c}.",
    "The role involves hands-on work with {a}, {b} and {c}.",
    "Key responsibilities include {a} and {b}, working closely with the wider team.",
)
JOB_REQUIREMENTS = (
    "Candidates should have {years} and be comfortable with {c}.",
    "You should bring {years}, including {c}.",
    "The ideal candidate has {years} and a strong grasp of {c}.",
)
JOB_PERKS = (
    "We offer HMO, pension and a 13th-month salary.",
    "Shortlisted candidates will be contacted via WhatsApp.",
    "Transport allowance and on-the-job training are provided.",
    "Applications close in two weeks, so apply early.",
    "Our team is friendly, fast-moving and growing.",
)
SEEKER_INPUTS = (
    "I want {a_role} job in {place}",
    "Looking for {role} roles in {place}",
    "I am {a_role} with {experience}, need a job",
    "pls any {category} job in {place}",
    "{role} job {place}",
    "I need work as {a_role}. I stay in {place}",
    "{role}, {level} level, open to {arrangement} work",
)
SEEKER_LOCATION_INPUTS = ("{city}", "I live in {city}", "Based in {city}, {state}", "{city} area")

# --------------------------------------------------------------------------- derived lookups

_UTC = dt.timezone.utc
_WINDOW_SECONDS = 180 * 86_400
_CITY_NAMES = tuple(c for c, _, _ in CITIES)
_CITY_WEIGHTS = tuple(w for _, _, w in CITIES)
_STATE_OF = {c: s for c, s, _ in CITIES}


def _neighbours(i: int) -> list[int]:
    """Families sharing a job function, else an industry, else the adjacent entries."""
    fam = FAMILIES[i]
    same = [j for j, f in enumerate(FAMILIES) if j != i and f["function"] == fam["function"]]
    if same:
        return same
    shared = [j for j, f in enumerate(FAMILIES)
              if j != i and set(f["industries"]) & set(fam["industries"])]
    return shared or [(i - 1) % len(FAMILIES), (i + 1) % len(FAMILIES)]


_NEIGHBOURS = tuple(_neighbours(i) for i in range(len(FAMILIES)))
# Per family: (company, industry) pairs of employers in one of the family's industries.
_EMPLOYERS = tuple([(name, ind) for ind in f["industries"] for name in COMPANIES_BY_INDUSTRY.get(ind, ())]
                   for f in FAMILIES)


_FAMILY_OF_TITLE = {t.lower(): f["title"] for f in FAMILIES for t in [f["title"], *f["variants"]]}


def families() -> list[str]:
    """Canonical titles of the occupation families, in table order."""
    return [f["title"] for f in FAMILIES]


# --------------------------------------------------------------------------- small helpers

def _article(phrase: str) -> str:
    """'a Chef', 'an Accountant', 'an HR Officer'."""
    first = phrase.split()[0]
    if first.isupper() and len(first) > 1:  # acronyms are read letter by letter
        vowel = first[0] in "AEFHILMNORSX"
    else:
        vowel = first[0].lower() in "aeiou"
    return ("an " if vowel else "a ") + phrase


def _round(value: float, step: int) -> int:
    return int(round(value / step)) * step


def _pick_city(rng: random.Random) -> str:
    return rng.choices(_CITY_NAMES, weights=_CITY_WEIGHTS)[0]


def _salary_range(rng: random.Random, band: tuple[int, int], step: int) -> tuple[int, int]:
    lo, hi = band
    smin = _round(rng.uniform(lo, lo + 0.6 * (hi - lo)), step)
    smax = _round(rng.uniform(lo + 0.4 * (hi - lo), hi), step)
    return smin, max(smin, smax)


# --------------------------------------------------------------------------- jobs

def _job_title(rng: random.Random, fam: dict, level: str) -> str:
    if level == "Manager":
        return fam["manager"]
    base = fam["title"] if rng.random() < 0.5 else rng.choice(fam["variants"])
    prefix = {"Entry": "Junior " if rng.random() < 0.35 else "",
              "Senior": "Senior " if rng.random() < 0.8 else "",
              "Lead": "Lead " if rng.random() < 0.85 else ""}.get(level, "")
    return prefix + base


def _job_location(rng: random.Random, fam: dict, arrangement: str):
    if arrangement == "Remote":
        return None, None, "Remote"
    hubs = fam.get("hubs")
    city = rng.choice(hubs) if hubs and rng.random() < 0.6 else _pick_city(rng)
    state = _STATE_OF[city]
    location = f"{city}, {state}" if rng.random() < 0.85 else f"{city}, {state}, Nigeria"
    return city, state, location


def _years(rng: random.Random, level: str) -> tuple[int | None, int | None]:
    r = rng.random()
    if r < 0.15:
        return None, None
    lo, hi = YEARS[level]
    ymin = rng.randint(lo, (lo + hi) // 2)
    if r < 0.30:
        return ymin, None
    return ymin, rng.randint(max(ymin + 1, (lo + hi) // 2), hi)


def _years_phrase(ymin: int | None, ymax: int | None) -> str:
    if ymin is not None and ymax is not None:
        return f"{ymin}-{ymax} years of relevant experience"
    if ymin:
        return f"at least {ymin} years of relevant experience"
    return "relevant experience"


def _description(rng: random.Random, job: dict, fam: dict) -> str:
    a, b, c = job["ai_required_skills"][:3]
    place = (f"in {job['location']}" if job["ai_city"]
             else "to work remotely from anywhere in Nigeria")
    sentences = [
        rng.choice(JOB_INTROS).format(company=job["company"], a_title=_article(job["title"]),
                                      place=place, industry=job["ai_industry"][0].lower()),
        rng.choice(JOB_DUTIES).format(a=a, b=b, c=c),
    ]
    mode = rng.random()
    if mode < 0.25:  # short posting: intro and duties only
        return " ".join(sentences)
    years = _years_phrase(job["ai_years_experience_min"], job["ai_years_experience_max"])
    sentences.append(rng.choice(JOB_REQUIREMENTS).format(years=years, c=job["ai_required_skills"][-1]))
    extras = [
        f"Knowledge of {' or '.join(job['ai_preferred_skills'][:2])} is an added advantage.",
        f"This is {_article(job['ai_employment_type'].lower())} role ({job['ai_work_arrangement'].lower()}).",
        f"We value {rng.choice(fam['soft']).lower()} and {rng.choice(GENERIC_SOFT).lower()}.",
        *rng.sample(JOB_PERKS, 2),
    ]
    if job["ai_salary_min"] is not None:
        extras.append(f"Annual pay: {job['ai_salary_currency']} {job['ai_salary_min']:,}"
                      f" - {job['ai_salary_max']:,}.")
    sentences += rng.sample(extras, 1 if mode < 0.70 else min(len(extras), rng.randint(3, 5)))
    return " ".join(sentences)


def _summary(rng: random.Random, job: dict) -> str:
    a, b = job["ai_required_skills"][:2]
    first = (f"{job['ai_job_level'][0]}-level {job['ai_job_function'].lower()} role at "
             f"{job['company']}, focused on {a} and {b}.")
    if rng.random() < 0.5:
        return first
    where = (f"based in {job['ai_city']}, {job['ai_state']}" if job["ai_city"]
             else "open to candidates anywhere in Nigeria")
    return f"{first} {job['ai_employment_type']} and {job['ai_work_arrangement'].lower()}, {where}."


def _employer(rng: random.Random, idx: int) -> tuple[str, list[str]]:
    """A company and the job's industries: mostly a sector employer, sometimes a conglomerate."""
    industries = FAMILIES[idx]["industries"]
    if _EMPLOYERS[idx] and rng.random() < 0.8:
        company, industry = rng.choice(_EMPLOYERS[idx])
        others = [i for i in industries if i != industry]
        return company, [industry] + (rng.sample(others, 1) if others and rng.random() < 0.3 else [])
    company = rng.choice(COMPANIES_BY_INDUSTRY["Diversified"])
    return company, rng.sample(industries, min(len(industries), rng.randint(1, 2)))


def _make_job(rng: random.Random, end: dt.datetime,
              window_seconds: int = _WINDOW_SECONDS) -> tuple[str, dict]:
    idx = rng.randrange(len(FAMILIES))
    fam = FAMILIES[idx]
    company, industries = _employer(rng, idx)
    level = rng.choices(LEVELS, weights=JOB_LEVEL_WEIGHTS)[0]
    levels = [level]
    if level not in ("Lead", "Manager") and rng.random() < 0.1:
        levels.append(LEVELS[LEVELS.index(level) + 1])
    title = _job_title(rng, fam, level)
    others = [t for t in [fam["title"], *fam["variants"]] if t != title]
    arrangement = rng.choices(ARRANGEMENTS, weights=(45, 30, 25) if fam["remote"] else (93, 7, 0))[0]
    city, state, location = _job_location(rng, fam, arrangement)
    etype = rng.choices(EMPLOYMENT_TYPES, weights=(60, 10, 10, 20) if level == "Entry" else (80, 7, 13, 0))[0]
    required = rng.sample(fam["skills"], rng.randint(4, 8))
    preferred = rng.sample(fam["preferred"] + [s for s in fam["skills"] if s not in required],
                           rng.randint(1, 4))
    ymin, ymax = _years(rng, level)
    smin = smax = currency = None
    if rng.random() >= 0.2:
        if arrangement == "Remote" and rng.random() < 0.25:
            (smin, smax), currency = _salary_range(rng, USD_BANDS[level], 1_000), "USD"
        else:
            (smin, smax), currency = _salary_range(rng, SALARY_SCALES[fam["scale"]][level], 50_000), "NGN"
    job = {
        "title": title, "company": company, "description": "", "location": location,
        "posted_date": end - dt.timedelta(seconds=rng.randrange(1, window_seconds + 1)),
        "ai_job_titles": [title, *rng.sample(others, rng.randint(0, 2))],
        "ai_job_function": fam["function"], "ai_job_level": levels,
        "ai_industry": industries, "ai_city": city, "ai_state": state, "ai_country": "Nigeria",
        "ai_work_arrangement": arrangement,
        "ai_remote_allowed": arrangement == "Remote" or (arrangement == "Hybrid" and rng.random() < 0.4),
        "ai_employment_type": etype, "ai_required_skills": required, "ai_preferred_skills": preferred,
        "ai_years_experience_min": ymin, "ai_years_experience_max": ymax,
        "ai_salary_min": smin, "ai_salary_max": smax, "ai_salary_currency": currency, "ai_summary": None,
    }
    job["description"] = _description(rng, job, fam)
    if rng.random() >= 0.3:
        job["ai_summary"] = _summary(rng, job)
    return fam["title"], job


def generate_jobs_with_family(n: int, *, seed: int = 7, today: dt.date | None = None,
                              days: int = 180) -> list[tuple[str, dict]]:
    """Like generate_jobs, but each job comes with its family's canonical title."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if today is None:
        today = dt.datetime.now(_UTC).date()
    end = dt.datetime(today.year, today.month, today.day, tzinfo=_UTC)
    rng = random.Random(seed)
    return [_make_job(rng, end, days * 86_400) for _ in range(n)]


def generate_jobs(n: int, *, seed: int = 7, today: dt.date | None = None,
                  days: int = 180) -> list[dict]:
    """n job postings (dicts keyed by JOB_COLUMNS), posted in the `days` days before today."""
    return [job for _, job in generate_jobs_with_family(n, seed=seed, today=today, days=days)]


def family_of_role(role: str) -> str | None:
    """The family (its canonical title) a seeker's role names, or None."""
    return _FAMILY_OF_TITLE.get(role.strip().lower())


# --------------------------------------------------------------------------- seekers

_SEEKER_DROPPABLE = ("job_categories", "user_job_input", "experience_level", "years_of_experience",
                     "technical_skills", "soft_skills", "preferred_locations", "user_location_input",
                     "work_arrangements", "employment_types", "salary", "company_size_preference",
                     "industry_preferences")


def _blank_seeker(user_id: int) -> dict:
    seeker = {k: None for k in SEEKER_COLUMNS}
    for key in ("job_roles", "job_categories", "technical_skills", "soft_skills", "preferred_locations",
                "work_arrangements", "employment_types", "company_size_preference", "industry_preferences"):
        seeker[key] = []
    seeker["user_id"], seeker["willing_to_relocate"] = user_id, False
    return seeker


def _seeker_skills(rng: random.Random, fam: dict, neighbour: dict) -> list[str]:
    skills = rng.sample(fam["skills"], rng.randint(3, 8))
    if rng.random() < 0.25:
        extra = [s for s in neighbour["skills"] if s not in skills]
        if extra:
            if len(skills) == 8:
                skills.pop()
            skills.append(rng.choice(extra))
    return skills


def _seeker_locations(rng: random.Random, fam: dict, home: str) -> list[str]:
    say = "Lagos" if _STATE_OF[home] == "Lagos" and rng.random() < 0.4 else home
    places = [say]
    if rng.random() < 0.35:
        other = _pick_city(rng)
        if other not in places and other != home:
            places.append(other)
    if rng.random() < (0.4 if fam["remote"] else 0.05):
        places.append("Remote")
    return places


def _seeker_arrangements(rng: random.Random, fam: dict, places: list[str]) -> list[str]:
    if fam["remote"]:
        chosen = set(rng.sample(ARRANGEMENTS, rng.randint(1, 3)))
    else:
        chosen = {"On-site", "Hybrid"} if rng.random() < 0.2 else {"On-site"}
    if "Remote" in places:
        chosen.add("Remote")
    return [a for a in ARRANGEMENTS if a in chosen]


def _seeker_employment(rng: random.Random, level: str) -> list[str]:
    options = [["Full-time"], ["Full-time", "Contract"], ["Contract"], ["Part-time"],
               ["Full-time", "Part-time"]]
    weights = [55, 20, 10, 5, 10]
    if level == "Entry":
        options.append(["Internship", "Full-time"])
        weights.append(25)
    return list(rng.choices(options, weights=weights)[0])


def _make_seeker(rng: random.Random, user_id: int) -> dict:
    kind = rng.random()
    if kind >= 0.95:
        return _blank_seeker(user_id)
    idx = rng.randrange(len(FAMILIES))
    fam, neighbour = FAMILIES[idx], FAMILIES[rng.choice(_NEIGHBOURS[idx])]
    level = rng.choices(SEEKER_LEVELS, weights=SEEKER_LEVEL_WEIGHTS)[0]
    years = rng.randint(*YEARS[level])
    roles = rng.sample([fam["title"], *fam["variants"]], rng.choice((1, 1, 2)))
    categories = [fam["function"]]
    if neighbour["function"] != fam["function"] and rng.random() < 0.3:
        categories.append(neighbour["function"])
    home = _pick_city(rng)
    places = _seeker_locations(rng, fam, home)
    smin, smax = _salary_range(rng, SALARY_SCALES[fam["scale"]][level], 50_000)
    role = roles[0].lower() if rng.random() < 0.5 else roles[0]
    arrangements = _seeker_arrangements(rng, fam, places)
    seeker = {
        "user_id": user_id, "job_roles": roles, "job_categories": categories,
        "user_job_input": rng.choice(SEEKER_INPUTS).format(
            role=role, a_role=_article(role), place=places[0], level=level.lower(),
            experience={0: "no experience yet", 1: "1 year experience"}.get(years, f"{years} years experience"),
            category=fam["function"].lower(), arrangement=rng.choice(arrangements).lower()),
        "experience_level": level, "years_of_experience": years,
        "technical_skills": _seeker_skills(rng, fam, neighbour),
        "soft_skills": rng.sample(fam["soft"] + [g for g in GENERIC_SOFT if g not in fam["soft"]],
                                  rng.randint(2, 4)),
        "preferred_locations": places,
        "user_location_input": rng.choice(SEEKER_LOCATION_INPUTS).format(city=home, state=_STATE_OF[home]),
        "willing_to_relocate": rng.random() < 0.35, "work_arrangements": arrangements,
        "employment_types": _seeker_employment(rng, level),
        "salary_min": smin, "salary_max": smax, "salary_currency": "NGN",
        "company_size_preference": sorted(rng.sample(COMPANY_SIZES, rng.randint(1, 3)), key=COMPANY_SIZES.index),
        "industry_preferences": rng.sample(fam["industries"], min(len(fam["industries"]), rng.randint(1, 2))),
    }
    if kind >= 0.70:  # partial profile: keep the roles, blank out most other fields
        for key in rng.sample(_SEEKER_DROPPABLE, rng.randint(6, len(_SEEKER_DROPPABLE))):
            if key == "salary":
                seeker["salary_min"] = seeker["salary_max"] = seeker["salary_currency"] = None
            else:
                seeker[key] = [] if isinstance(seeker[key], list) else None
    return seeker


def generate_seekers(n: int, *, seed: int = 11) -> list[dict]:
    """n job seekers (dicts keyed by SEEKER_COLUMNS) with user_id 1..n."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    return [_make_seeker(rng, uid) for uid in range(1, n + 1)]
